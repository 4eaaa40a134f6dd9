/* Complex integer powers, shared by the modules that evaluate modal
 * responses. Kept out of internal.h: <complex.h> must not precede
 * <fftw3.h> in the FFT code (it changes fftw_complex). Not installed. */
#ifndef CONVREC_CPOW_H
#define CONVREC_CPOW_H

#include <complex.h>
#include <stddef.h>

/* z^p by binary powering: the relative error grows like log2(p) eps, not
 * like p eps as for repeated multiplication. */
static inline double complex cr__cpow(double complex z, size_t p)
{
    double complex r = 1.0;
    while (p) {
        if (p & 1) r *= z;
        z *= z;
        p >>= 1;
    }
    return r;
}

#endif
