"""python3 -m convrec study|report ARGS (what `convrec study|report` runs).

Exit status: 0 success, 1 bad input or a failure (the message names the
file or option and the problem), 2 usage error, 130 interrupted.
"""
import sys

USAGE = """usage: python3 -m convrec study KERNELS... -o DIR [options]
       python3 -m convrec report MODEL [KERNELS] -o DIR [options]
       python3 -m convrec study|report --help

  study    fit every selected channel at every order with every method and
           horizon; DIR/study.json and DIR/index.html (errors against order,
           between the Hankel-singular-value floor and ceiling)
  report   DIR/index.html for a fitted model (and its kernels), or for a
           study.json: tables and figures, images embedded
"""


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        (sys.stdout if argv else sys.stderr).write(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "study":
        from . import study as mod
    elif cmd == "report":
        from . import report as mod
    else:
        sys.stderr.write(f"convrec: unknown command '{cmd}' for the Python package\n\n{USAGE}")
        return 2
    from .inputs import UserError
    args = mod.build_parser().parse_args(rest)  # usage errors exit 2 with argparse's message
    args.argv = rest
    try:
        return mod.run(args)
    except UserError as e:
        sys.stderr.write(f"convrec {cmd}: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"\nconvrec {cmd}: interrupted\n")
        return 130
    except MemoryError:
        sys.stderr.write(f"convrec {cmd}: out of memory\n")
        return 1
    except OSError as e:
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        sys.stderr.write(f"convrec {cmd}: {where}{e.strerror or e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
