"""Worked examples on real networks (convrec.examples.s4d_scifar)."""
