/*
 * convrec: long convolution kernels -> small stable state-space recurrences.
 *
 * One header, one section per module. Conventions (docs/MATH.md, the top; files: docs/FORMAT.md):
 *   kernel h[0..L-1] is causal, y[t] = sum_k h[k] u[t-k]; banks are row-major
 *   (C, L); signals are (C, T) or (B, C, T). N ("order") is the dimension of
 *   the real state: a conjugate pair of modes counts 2, a real mode 1.
 *
 * Errors: every function returns a cr_status. Negative codes are bad
 * arguments or bad input, positive codes are numerical failures. The library
 * never prints, exits or aborts. cr_error_detail() gives a one-line
 * description of the last failure in the calling thread.
 *
 * Threading contract (tested under ThreadSanitizer by tests/test_threads):
 *   - In general: functions that take a `const` object may be called
 *     concurrently on the same object; an object passed non-const must not
 *     be used by another thread at the same time (no internal locking).
 *   - cr_model: immutable and shareable once built (by cr_fit,
 *     cr_model_load, cr_model_copy, or the last cr_model_set_* call): any
 *     number of threads may query it, materialise kernels and errors,
 *     convert, export, save, copy it and create streams from it at once.
 *     The cr_model_set_* calls must not overlap any other use.
 *   - cr_stream_d/_f, cr_ols_d/_f, cr_fir_d/_f: hold a state: one thread at
 *     a time per object. Separate objects are independent, also when made
 *     from the same model; a stream keeps no pointer into its model.
 *   - cr_fit: reentrant: concurrent calls are allowed, on the same or
 *     different kernels. It changes no global state (not the BLAS thread
 *     count either: see BLAS below); its OpenMP threads are its own.
 *   - cr_hankel_op: apply/apply_t on a const op from any number of threads.
 *   - The FFT plan cache (spectral module) is internal and thread-safe:
 *     everything that uses FFTs may be called from any thread.
 *   - cr_error_detail(): per thread (the last failure of the calling thread).
 *   - Files (npy, safetensors, model, export): reentrant; writes are atomic
 *     (temporary file + rename), so two writers of one path leave one of the
 *     two files whole, never a mix.
 * OpenMP is used only at the top level, across channels (and streams, or
 * segments of a signal).
 *
 * Thread counts: an `nthreads` argument (cr_conv_*, cr_fit_options) <= 0
 * means the OpenMP default (OMP_NUM_THREADS, else one per core). Every
 * count, given or default, is clipped to CR_THREADS_PER_PROC times
 * omp_get_num_procs() and to the number of independent work items
 * (channels, streams, segments), so any int is safe.
 *
 * BLAS: convrec calls BLAS/LAPACK only inside its own OpenMP loops, one
 * channel per thread, and needs them single-threaded there. It never sets
 * the BLAS thread count: that is the caller's business. With a pthreads
 * OpenBLAS (Debian's default libopenblas0-pthread), call
 * openblas_set_num_threads(1) or set OPENBLAS_NUM_THREADS=1 before fitting
 * (the Python package does so around every fit and restores the count);
 * otherwise each LAPACK call in a convrec thread starts threads of its own
 * (measured: a fit of 16 kernels of length 2048 on 2 cores took 480 ms
 * instead of 90 ms). Its idle pool also spins on sched_yield for about
 * 0.1 s after start-up; the convrec command stops it (src/cli/main.c). An
 * OpenMP OpenBLAS (libopenblas0-openmp) runs single-threaded inside OpenMP
 * regions by itself and has no pool of its own.
 */
#ifndef CONVREC_H
#define CONVREC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Thread counts are clipped to this many threads per processor (see
 * "Thread counts" above). */
#define CR_THREADS_PER_PROC 4

#if defined(__GNUC__)
#define CR_API __attribute__((visibility("default")))
#else
#define CR_API
#endif

/* ======================================================================
 * Status
 * ====================================================================== */
typedef enum cr_status {
    CR_OK = 0,
    /* bad arguments or input (negative) */
    CR_EINVAL = -1,      /* invalid argument: NULL pointer, zero length, out of range */
    CR_ESHAPE = -2,      /* mismatched or unsupported array shape */
    CR_EOVERFLOW = -3,   /* a size overflows or is absurdly large */
    CR_ENONFINITE = -4,  /* NaN or Inf in input data */
    CR_ENOMEM = -5,      /* allocation failed */
    CR_EIO = -6,         /* file could not be opened, read or written */
    CR_EFORMAT = -7,     /* malformed file */
    CR_EDTYPE = -8,      /* unsupported data type */
    CR_EUNSUPPORTED = -9,/* valid request this build or method cannot do */
    /* numerical failures (positive) */
    CR_EUNSTABLE = 1,    /* model has a pole with |lambda| >= 1 (or above the margin) */
    CR_ENOCONV = 2,      /* an iteration did not converge */
    CR_ESINGULAR = 3,    /* singular or numerically rank-deficient system */
    CR_ELAPACK = 4,      /* LAPACK reported a failure */
    CR_EPRECISION = 5    /* a number format cannot hold the model accurately enough
                          * (fixed-point export: error budget, pole margin, range) */
} cr_status;

/* Short, static description of a status code. Never NULL. */
CR_API const char *cr_strerror(cr_status s);
/* Detail of the last failure in this thread (e.g. "header: missing 'shape'"),
 * or "" if none. Valid until the next convrec call in this thread. */
CR_API const char *cr_error_detail(void);
/* Library version string, e.g. "0.1.0". */
CR_API const char *cr_version(void);

/* Layout of the public structs (core/abi.c), for bindings that mirror them
 * (ctypes, cffi in ABI mode) and must check their copy when they load the
 * library: a mismatch would otherwise corrupt memory silently.
 * cr_abi_entries() is the number of entries; entry i < cr_abi_entries() gives
 * the struct name in *type ("cr_fit_options", "cr_fit_record",
 * "cr_model_view", "cr_array"), the member name in *field ("" for the struct
 * itself), and *offset = offsetof(type, field), *size = sizeof the member
 * (for the struct itself: offset 0, size = sizeof(type)). Strings are static.
 * i out of range or a NULL pointer: CR_EINVAL. */
CR_API size_t cr_abi_entries(void);
CR_API cr_status cr_abi_entry(size_t i, const char **type, const char **field,
                              size_t *offset, size_t *size);

/* ======================================================================
 * Arrays and .npy files (io_npy.c)
 * ====================================================================== */
typedef enum cr_dtype { CR_FLOAT32 = 4, CR_FLOAT64 = 8 } cr_dtype;

/* A dense, C-ordered, native-endian array of 1..3 dimensions.
 * data is owned by the array when filled by cr_npy_read or cr_array_alloc
 * (free with cr_array_free). */
typedef struct cr_array {
    cr_dtype dtype;
    int ndim;            /* 1..3 */
    size_t shape[3];     /* unused trailing entries are 1 */
    void *data;
} cr_array;

/* Number of elements (product of shape). */
CR_API size_t cr_array_count(const cr_array *a);
/* Read a .npy file (format 1.0, 2.0, 3.0; '<f4', '<f8', '>f4', '>f8';
 * C or Fortran order, converted to C order; 1 to 3 dimensions).
 * Rejects NaN/Inf with CR_ENONFINITE. On failure *out is zeroed. */
CR_API cr_status cr_npy_read(const char *path, cr_array *out);
/* A new array of the given dtype and shape (ndim 1..3, every shape[i] >= 1
 * for i < ndim; entries from ndim on are ignored and set to 1), its data
 * uninitialised and owned by the array: free it with cr_array_free.
 * Arrays of 2 MiB and more are 2 MiB-aligned and asked to use transparent
 * huge pages (fewer page faults when first written: a 16 MiB array costs
 * about a third of the system time of plain malloc). CR_EINVAL for NULL,
 * a bad dtype or ndim, CR_ESHAPE for a zero dimension, CR_EOVERFLOW above
 * 2^40 elements, CR_ENOMEM. On failure *a is zeroed. */
CR_API cr_status cr_array_alloc(cr_array *a, cr_dtype dtype, int ndim, const size_t shape[3]);
/* Write a .npy file (format 1.0, little-endian, C order) atomically:
 * to a temporary file in the same folder, then renamed over path. */
CR_API cr_status cr_npy_write(const char *path, const cr_array *a);
CR_API void cr_array_free(cr_array *a);

/* Memory limit for what files claim. Every size read from a file (a .npy
 * array, a safetensors tensor after conversion, a model's arrays) is
 * checked against the real file size and against CR_MAX_ALLOC bytes before
 * anything is allocated for it; a larger claim is refused with CR_EOVERFLOW
 * and a detail saying how many bytes it would need. The limit is fixed when
 * libconvrec is built (default 16 GiB; CPPFLAGS=-DCR_MAX_ALLOC=... to
 * change it); cr_max_alloc() returns the value the library was built with. */
#ifndef CR_MAX_ALLOC
#define CR_MAX_ALLOC ((size_t)16 << 30)
#endif
CR_API size_t cr_max_alloc(void);

/* ======================================================================
 * safetensors checkpoints (io/safetensors.c)
 *
 * Tensors of any .safetensors file (the checkpoints of PyTorch, JAX, ...
 * saved with the safetensors library), e.g. the long-convolution kernels of
 * a trained network, read as cr_arrays ready for cr_fit. The file is
 * validated before anything big is allocated: the header length (at most
 * 100 MB, within the file), the JSON header (UTF-8, no duplicated names),
 * every tensor's dtype, shape and data_offsets against each other and
 * against the file size (the tensors must tile the data section exactly,
 * as the reference reader requires). Only the requested tensor's bytes are
 * then read. Every failure names the file and the problem.
 * Threading: no shared state; any number of threads may read at once.
 * ====================================================================== */

/* One tensor of a listing. */
typedef struct cr_tensor_info {
    const char *name;  /* the tensor's name, stored in the listing's block */
    char dtype[16];    /* as written in the file: "F32", "BF16", "I64", ... */
    int ndim;          /* 0..8 */
    size_t shape[8];   /* shape[0..ndim-1]; unused entries are 1 */
} cr_tensor_info;

/* List the tensors of a safetensors file, sorted by name.
 *   path: the file.
 *   out:  receives an array of *n entries [size: *n], names included, in
 *         one allocation owned by the caller: free(*out). NULL on failure.
 *   n:    receives the number of tensors (0 for a file without any).
 * __metadata__ is not a tensor and is not listed. */
CR_API cr_status cr_safetensors_list(const char *path, cr_tensor_info **out, size_t *n);

/* Read tensor `name` of a safetensors file as a float array.
 *   path:  the file; name: the tensor's exact name.
 *   dtype: CR_FLOAT64 or CR_FLOAT32, the element type of out->data.
 *          File dtypes F64, F32, F16 (IEEE half) and BF16 (bfloat16) are
 *          converted: to float64 exactly from all four; to float32 exactly
 *          from F32, F16 and BF16, and rounded to nearest from F64 (a value
 *          beyond float32's range: CR_EOVERFLOW). Any other dtype:
 *          CR_EDTYPE, the detail naming it.
 *   Shapes: (L,) gives a 1-D array of shape (L); (C, L) and (C, 1, L) (a
 *          depthwise conv1d weight) give a 2-D array (C, L), row-major: the
 *          layout of cr_fit's kernel bank. Other shapes or a zero dimension:
 *          CR_ESHAPE.
 *   Values: NaN or Inf gives CR_ENONFINITE (the detail names the element).
 *   Memory: C * L * sizeof(element) must be <= CR_MAX_ALLOC (CR_EOVERFLOW,
 *          the detail says how many bytes it would need).
 *   A name the file does not have gives CR_EINVAL, and the detail lists the
 *          tensors present (see also cr_safetensors_list).
 *   out:   receives the array; its data is owned by the caller
 *          (cr_array_free). Zeroed on failure. */
CR_API cr_status cr_safetensors_read(const char *path, const char *name, cr_dtype dtype,
                                     cr_array *out);

/* ======================================================================
 * Audio files (io/audio.c, libsndfile)
 *
 * Whatever libsndfile reads: WAV, FLAC, AIFF, AU, CAF, W64, RF64, Ogg/Vorbis,
 * ... in any sample format. Samples come as float64: PCM of b bits as the
 * integer divided by 2^(b-1) (a 16-bit sample s reads as s / 32768, as
 * numpy users scale them), float files as stored. The channels of a file
 * are channels first: (C, T), sample t of channel c at c * T + t.
 * Every reader checks what it reads: a file that libsndfile cannot open
 * (unsupported, malformed), with zero channels or zero frames, shorter
 * than its header says (truncated), or with NaN/Inf samples gives an
 * error whose detail names the file (CR_EFORMAT, CR_EIO, CR_ENONFINITE).
 * ====================================================================== */

/* Sample format of a file written (cr_audio_writer_open). */
typedef enum cr_audio_subtype {
    CR_AUDIO_DEFAULT = 0, /* 32-bit float, or 24-bit PCM where the container
                           * holds no float (FLAC) */
    CR_AUDIO_FLOAT = 1,   /* 32-bit IEEE float */
    CR_AUDIO_DOUBLE = 2,  /* 64-bit IEEE float */
    CR_AUDIO_PCM16 = 3,
    CR_AUDIO_PCM24 = 4,
    CR_AUDIO_PCM32 = 5,
    CR_AUDIO_PCM8 = 6
} cr_audio_subtype;

/* What a file holds. */
typedef struct cr_audio_info {
    double rate;         /* samples per second (> 0) */
    size_t channels;     /* >= 1 */
    size_t frames;       /* samples per channel (>= 1) */
    char format[48];     /* container, e.g. "WAV (Microsoft)" (libsndfile's name) */
    char subtype[48];    /* sample format, e.g. "Signed 16 bit PCM" */
} cr_audio_info;

/* Read a whole file into out (float64, ndim 2, shape (C, T)), *info
 * (optional) filled. On failure *out is zeroed. */
CR_API cr_status cr_audio_read(const char *path, cr_array *out, cr_audio_info *info);
/* Write a (T,) or (C, T) array (float32 or float64; C <= 1024) at rate
 * (> 0, finite) atomically (temporary file + rename). The container comes
 * from the extension of path (.wav .flac .aiff/.aif .au .caf .w64 .rf64
 * .ogg, ...; anything libsndfile writes). PCM output is rounded to the
 * nearest step and saturated at full scale: *clipped (optional) receives
 * how many samples were saturated, never wrapped. NaN/Inf: CR_ENONFINITE. */
CR_API cr_status cr_audio_write(const char *path, const cr_array *a, double rate,
                                cr_audio_subtype subtype, size_t *clipped);
/* The subtype named s ("float", "double", "pcm16", "pcm24", "pcm32",
 * "pcm8", "default"); CR_EINVAL for another name. */
CR_API cr_status cr_audio_subtype_parse(const char *s, cr_audio_subtype *out);

/* Streaming, in bounded memory: a reader hands out blocks of frames, a
 * writer takes them. Buffers are channel-major: channel c of a block at
 * buf + c * ld, ld >= the block's frames. */
typedef struct cr_audio_reader cr_audio_reader;
/* Open path for reading; *info (optional) receives what it holds. */
CR_API cr_status cr_audio_reader_open(cr_audio_reader **r, const char *path, cr_audio_info *info);
/* Up to nmax frames into buf (C rows, leading dimension ld >= nmax);
 * *got (required) receives how many: 0 only at the end of the file. A
 * file that ends before the frame count of its header: CR_EFORMAT
 * ("truncated"); NaN/Inf samples: CR_ENONFINITE (naming channel and
 * frame). */
CR_API cr_status cr_audio_reader_read(cr_audio_reader *r, double *buf, size_t ld, size_t nmax,
                                      size_t *got);
CR_API void cr_audio_reader_close(cr_audio_reader *r);

typedef struct cr_audio_writer cr_audio_writer;
/* Open path for writing C channels (1 <= C <= 1024) at rate; nothing
 * appears at path until cr_audio_writer_close commits. */
CR_API cr_status cr_audio_writer_open(cr_audio_writer **w, const char *path, double rate,
                                      size_t C, cr_audio_subtype subtype);
/* Append n frames from buf (C rows, leading dimension ld >= n). */
CR_API cr_status cr_audio_writer_write(cr_audio_writer *w, const double *buf, size_t ld,
                                       size_t n);
/* Samples saturated so far (PCM only; 0 for float output). */
CR_API size_t cr_audio_writer_clipped(const cr_audio_writer *w);
/* Finish: with commit != 0 the file is completed and renamed over path,
 * otherwise (or when anything failed) it is removed and path is left
 * untouched. Frees w (NULL is a no-op returning CR_OK). */
CR_API cr_status cr_audio_writer_close(cr_audio_writer *w, int commit);

/* ======================================================================
 * Spectral module (spectral.c): FFT convolution, streaming convolution,
 * frequency responses, Hankel products by FFT.
 *
 * Plan cache: FFTW plans are created once per (size, precision) under a
 * lock and then executed with the new-array interface, which is
 * thread-safe; all functions below may be called from several threads.
 * ====================================================================== */

/* Smallest n' >= n of the form 2^a 3^b 5^c 7^d (FFTW's fast sizes). */
CR_API size_t cr_fft_good_size(size_t n);

/* Batched causal convolution: h (C, L), u (B, C, T), y (B, C, T),
 * y[b,c,t] = sum_{k<=min(t,L-1)} h[c,k] u[b,c,t-k].
 * nthreads <= 0 uses the OpenMP default; any value is clipped to
 * CR_THREADS_PER_PROC per processor and to B * C * segments (header,
 * "Thread counts"). y must not overlap h or u. */
CR_API cr_status cr_conv_d(const double *h, size_t C, size_t L,
                           const double *u, size_t B, size_t T,
                           double *y, int nthreads);
CR_API cr_status cr_conv_f(const float *h, size_t C, size_t L,
                           const float *u, size_t B, size_t T,
                           float *y, int nthreads);

/* Frequency response of a kernel bank on the n-point grid of the unit
 * circle: H[c,j] = sum_k h[c,k] exp(-2 pi i j k / n), j = 0..n/2,
 * stored interleaved (re, im): out has C * (n/2 + 1) * 2 doubles.
 * n >= L. */
CR_API cr_status cr_freqresp(const double *h, size_t C, size_t L, size_t n,
                             double *out);

/* Hankel operator H[i,j] = h[i+j+1], 0 <= i < m, 0 <= j < n, with h zero
 * beyond L; applied by FFT in O((L + m + n) log) without forming H. */
typedef struct cr_hankel_op cr_hankel_op;
CR_API cr_status cr_hankel_op_create(cr_hankel_op **op, const double *h,
                                     size_t L, size_t m, size_t n);
/* Y = H X for k column vectors: X is n x k column-major with leading
 * dimension ldx >= n, Y is m x k with ldy >= m. Thread-safe on a const op. */
CR_API cr_status cr_hankel_op_apply(const cr_hankel_op *op, size_t k,
                                    const double *X, size_t ldx,
                                    double *Y, size_t ldy);
/* Y = H^T X: X is m x k (ldx >= m), Y is n x k (ldy >= n). */
CR_API cr_status cr_hankel_op_apply_t(const cr_hankel_op *op, size_t k,
                                      const double *X, size_t ldx,
                                      double *Y, size_t ldy);
CR_API void cr_hankel_op_destroy(cr_hankel_op *op);

/* Streaming convolution peers (declared by the spectral module below). */
/*
 * Both process C channels in lockstep; signals are channel-major: sample t
 * of channel c is u[c * ldu + t] (ldu >= n when C > 1), so a slice of a
 * (C, T) array is passed as (u + t0, ldu = T). Each comes in a double (_d)
 * and a float (_f) variant with the same verbs. Objects allocate only in
 * create; push/pull/process never allocate. Outputs equal the full causal
 * convolution y[t] = sum_{k<=min(t,L-1)} h[c,k] u[c,t-k], t counted from
 * create or the last reset. One object must not be used from two threads
 * at once; separate objects are independent.
 *
 * Uniformly partitioned overlap-save (cr_ols_*): the kernel is split into
 * ceil(L/P) partitions of P taps, each applied in the frequency domain
 * (FFT size 2P) through a delay line of input spectra: per block of P
 * samples, two FFTs of size 2P and ceil(L/P) complex products.
 * Latency: outputs come out in whole blocks. Output t can be pulled as soon
 * as sample P*floor(t/P) + P - 1 has been pushed, i.e. a block-based caller
 * that pushes P samples then pulls P gets each block back P samples after
 * it started it. Pulled samples are exact, never delayed or zero-filled:
 * sample t of the pulled stream is y[t]. To drain the tail, push zeros.
 * Buffering: at most room() samples may be pushed before pulling; room()
 * >= max_chunk whenever everything available has been pulled.
 */
typedef struct cr_ols_d cr_ols_d;
typedef struct cr_ols_f cr_ols_f;
/* h (C, L) row-major, copied (not kept). P >= 1 block size, max_chunk >= 1
 * the largest push the caller intends between pulls (0 means P).
 * CR_EINVAL for NULL/zero sizes, CR_EOVERFLOW for absurd sizes,
 * CR_ENONFINITE for NaN/Inf in h. */
CR_API cr_status cr_ols_d_create(cr_ols_d **s, const double *h, size_t C, size_t L,
                                 size_t P, size_t max_chunk);
CR_API cr_status cr_ols_f_create(cr_ols_f **s, const float *h, size_t C, size_t L,
                                 size_t P, size_t max_chunk);
/* Append n samples per channel (u: C rows, leading dimension ldu). n == 0
 * is a no-op (u may then be NULL). n > room(): CR_EINVAL and nothing is
 * consumed. NaN/Inf: CR_ENONFINITE and nothing is consumed. */
CR_API cr_status cr_ols_d_push(cr_ols_d *s, const double *u, size_t ldu, size_t n);
CR_API cr_status cr_ols_f_push(cr_ols_f *s, const float *u, size_t ldu, size_t n);
/* Take up to nmax available output samples per channel into y (C rows,
 * leading dimension ldy); *got (may be NULL) receives how many. */
CR_API cr_status cr_ols_d_pull(cr_ols_d *s, double *y, size_t ldy, size_t nmax, size_t *got);
CR_API cr_status cr_ols_f_pull(cr_ols_f *s, float *y, size_t ldy, size_t nmax, size_t *got);
/* Output samples ready to pull; samples push() accepts now (0 for NULL). */
CR_API size_t cr_ols_d_available(const cr_ols_d *s);
CR_API size_t cr_ols_f_available(const cr_ols_f *s);
CR_API size_t cr_ols_d_room(const cr_ols_d *s);
CR_API size_t cr_ols_f_room(const cr_ols_f *s);
/* Forget all history and pending output (as after create). CR_EINVAL for
 * NULL. */
CR_API cr_status cr_ols_d_reset(cr_ols_d *s);
CR_API cr_status cr_ols_f_reset(cr_ols_f *s);
CR_API void cr_ols_d_destroy(cr_ols_d *s);
CR_API void cr_ols_f_destroy(cr_ols_f *s);

/* Direct-form FIR streamer (cr_fir_*): latency 0, L multiply-adds per
 * sample and channel on a doubled circular delay line (vectorised dot
 * product). process() pushes n samples and pulls their n outputs at once:
 * y[c * ldy + t] = y_full[t0 + t] where t0 counts samples since create or
 * reset. y may be u itself (same leading dimension); other overlaps are
 * rejected. NaN/Inf in u: CR_ENONFINITE and the state is unchanged. */
typedef struct cr_fir_d cr_fir_d;
typedef struct cr_fir_f cr_fir_f;
CR_API cr_status cr_fir_d_create(cr_fir_d **s, const double *h, size_t C, size_t L);
CR_API cr_status cr_fir_f_create(cr_fir_f **s, const float *h, size_t C, size_t L);
CR_API cr_status cr_fir_d_process(cr_fir_d *s, const double *u, size_t ldu, double *y,
                                  size_t ldy, size_t n);
CR_API cr_status cr_fir_f_process(cr_fir_f *s, const float *u, size_t ldu, float *y,
                                  size_t ldy, size_t n);
/* Back to the state after create (zero history). CR_EINVAL for NULL. */
CR_API cr_status cr_fir_d_reset(cr_fir_d *s);
CR_API cr_status cr_fir_f_reset(cr_fir_f *s);
CR_API void cr_fir_d_destroy(cr_fir_d *s);
CR_API void cr_fir_f_destroy(cr_fir_f *s);

/* ======================================================================
 * Hankel singular values (hankel.c)
 * ====================================================================== */
typedef enum cr_horizon {
    CR_HORIZON_WINDOW = 0,   /* error on k < L only; response beyond L is free */
    CR_HORIZON_INFINITE = 1  /* h is zero beyond L; the model's tail is error */
} cr_horizon;

/* Leading k Hankel singular values of one kernel h (length L).
 * CR_HORIZON_INFINITE: zero-padded H[i,j] = h[i+j+1], i,j < L-1 (the FIR
 * system's HSV). CR_HORIZON_WINDOW: the window Hankel, i + j + 1 < L,
 * p = ceil((L-1)/2) rows, q = L-1-p+1 columns.
 * k is clipped to the matrix rank bound; *k_out (optional) receives the
 * number written. err_est (optional, may be NULL) receives an estimate of
 * the absolute error of each value (0 for dense LAPACK). */
CR_API cr_status cr_hsv(const double *h, size_t L, cr_horizon horizon,
                        size_t k, double *sigma, size_t *k_out,
                        double *err_est);

/* ======================================================================
 * Model (model.c, io_safetensors.c)
 *
 * A model holds C channels; channel c has up to M modes. Mode j of channel c
 * has a kind (unused, real, conjugate pair), a pole lambda and a residue r
 * (one representative per pair), and the channel has a feedthrough d:
 *   hhat[0] = d, hhat[k] = sum_m w_m Re(r_m lambda_m^(k-1)), w = 2 for pairs.
 * A model is immutable after it is built; share it freely across threads
 * (const calls only; see the threading contract at the top).
 * ====================================================================== */
typedef enum cr_mode_kind {
    CR_MODE_UNUSED = 0,
    CR_MODE_REAL = 1,
    CR_MODE_PAIR = 2
} cr_mode_kind;

typedef enum cr_method {
    CR_METHOD_AUTO = 0,
    CR_METHOD_BT = 1,
    CR_METHOD_HNA = 2,
    CR_METHOD_PENCIL = 3,
    CR_METHOD_NONE = 4       /* built by hand (cr_model_set_channel) */
} cr_method;

/* The method's name as model files, exports and the command write it:
 * "auto", "bt", "hna", "pencil", "none"; NULL for another value. */
CR_API const char *cr_method_name(cr_method m);

/* Fit record of one channel. Errors are NaN when unknown. */
typedef struct cr_fit_record {
    size_t order;         /* real state dimension N */
    size_t length;        /* kernel length L the errors refer to (0: unknown) */
    double err_window;    /* ||h - hhat|| / ||h|| over k < L */
    double err_infinite;  /* same over all k >= 0 (tail of hhat in closed form) */
    double err_hinf;      /* max |H - Hhat| on an FFT grid of >= 8L points (absolute) */
    double h_norm;        /* ||h||_2 over k < L */
    double sigma_next;    /* sigma_{N+1} of the zero-padded (FIR) Hankel */
    double bt_bound;      /* 2 sum_{i>N} sigma_i (an upper bound when estimated) */
    /* Third-octave band errors (cr_model_band_errors), NaN when the
     * sample rate is unknown: */
    double band_db_max;   /* largest |band level error| in dB over the bands */
    double band_db_rms;   /* RMS of the band level errors in dB */
    double band_worst_hz; /* midband frequency of the band with band_db_max */
} cr_fit_record;

typedef struct cr_model cr_model;

/* An empty model: C channels, room for M modes each, all unused, d = 0. */
CR_API cr_status cr_model_create(cr_model **m, size_t C, size_t M);
CR_API void cr_model_destroy(cr_model *m);
CR_API cr_status cr_model_copy(const cr_model *m, cr_model **out);
/* Set channel c: n modes (n <= M) with kinds, poles (re, im) and residues
 * (re, im), and feedthrough d. Real modes must have im parts 0; pairs are
 * stored once with im(pole) != 0 (either sign). Values must be finite. */
CR_API cr_status cr_model_set_channel(cr_model *m, size_t c, size_t n,
                                      const unsigned char *kind,
                                      const double *pole_re, const double *pole_im,
                                      const double *res_re, const double *res_im,
                                      double d);
/* Read access. Pointers stay valid while the model lives; arrays are
 * (C, M) row-major; unused modes have kind 0 and zero pole and residue. */
typedef struct cr_model_view {
    size_t C, M;
    const unsigned char *kind;
    const double *pole_re, *pole_im, *res_re, *res_im;
    const double *d;               /* (C) */
    const cr_fit_record *record;   /* (C) */
    cr_method method;
    cr_horizon horizon;
    double rate;                   /* sample rate in Hz; 0 = unknown */
} cr_model_view;
CR_API cr_status cr_model_get_view(const cr_model *m, cr_model_view *v);
CR_API size_t cr_model_order(const cr_model *m, size_t c);     /* N of channel c */
/* Largest |lambda| of channel c (0 for a model with d only). */
CR_API double cr_model_spectral_radius(const cr_model *m, size_t c);
/* CR_OK if every |lambda| <= 1 - margin (margin >= 0), else CR_EUNSTABLE
 * with the detail naming the channel and |lambda|. */
CR_API cr_status cr_model_check_stable(const cr_model *m, double margin);
CR_API void cr_model_set_record(cr_model *m, size_t c, const cr_fit_record *r);
CR_API void cr_model_set_info(cr_model *m, cr_method method, cr_horizon horizon);
/* The sample rate the kernels were taken at (Hz; 0 = unknown, the
 * default). Stored in the model file and shown by `convrec info`.
 * CR_EINVAL unless rate is 0 or positive and finite. */
CR_API cr_status cr_model_set_rate(cr_model *m, double rate);
CR_API double cr_model_rate(const cr_model *m);   /* 0 for NULL or unknown */

/* Impulse responses of all channels, out (C, L) row-major. */
CR_API cr_status cr_model_kernel(const cr_model *m, size_t L, double *out);
/* Errors of channel c of the model against kernel h (length L): fills
 * err_window, err_infinite, err_hinf, h_norm, length and order of *rec;
 * leaves sigma_next and bt_bound untouched. */
CR_API cr_status cr_model_errors(const cr_model *m, size_t c, const double *h,
                                 size_t L, cr_fit_record *rec);

/* Third-octave band errors (docs/MATH.md "Band errors"). The bands are
 * those of IEC 61260-1 (base ten): midband frequencies f_x = 1000 *
 * 10^(x/10) Hz, edges f_x 10^(+-1/20), for every x with f_x from 20 Hz
 * (x = -17, f = 19.95 Hz) up to rate/2; the top band is cut at rate/2.
 * A band's level is the mean of |H(f)|^2 over the points f = j rate / n
 * (j = 0..n/2) of the band (lower edge included, upper excluded; a band
 * cut at rate/2 includes rate/2), on n = the smallest even FFTW-friendly
 * size >= max(8 L, 4 rate), with H the DTFT of the kernel (zero beyond L) and Hhat
 * the model's transfer function (its whole response, in closed form).
 * The band error is e_b = 10 log10(max(Phat_b, f) / max(P_b, f)) dB,
 * with the floor f = 1e-20 times the largest level of either. */
#define CR_BAND_FMIN 20.0
typedef struct cr_band_errors {
    double db_max;    /* max_b |e_b| */
    double db_rms;    /* sqrt(mean_b e_b^2) */
    double worst_hz;  /* midband frequency of the band of db_max */
    size_t nbands;    /* bands from 20 Hz to rate/2 */
} cr_band_errors;
/* The bands at rate (> 40 Hz): returns their number; fills up to cap
 * midband frequencies and edges (each array may be NULL). 0 for a rate
 * without any band (rate/2 < 19.95 Hz) or an invalid rate. */
CR_API size_t cr_third_octave_bands(double rate, double *fm, double *lo, double *hi, size_t cap);
/* Band errors of channel c of the model against kernel h (length L) at
 * rate. band_db (optional, cap entries) receives the signed errors e_b of
 * the bands (model minus kernel, dB) when cap >= nbands. CR_EINVAL for
 * a rate with no band. */
CR_API cr_status cr_model_band_errors(const cr_model *m, size_t c, const double *h, size_t L,
                                      double rate, cr_band_errors *out, double *band_db,
                                      size_t cap);

/* Trim a measured impulse response bank h (C, L): the leading silence
 * and the noise tail, where every channel stays below db (< 0) dB re the
 * bank's peak |h|. With the RMS envelope of a channel at sample k taken
 * over the `window` samples [k - window/2, k - window/2 + window) (window
 * >= 1; 1 ms is a good choice), the kept range is [*first, *end): first =
 * the first sample where the envelope of any channel reaches the
 * threshold (up to window/2 before the onset), end = one past the last
 * one (at least one past the peak). A noise floor above the threshold is
 * kept whole. An all-zero bank: CR_EINVAL. */
CR_API cr_status cr_kernel_trim(const double *h, size_t C, size_t L, double db, size_t window,
                                size_t *first, size_t *end);

/* Save / load the .safetensors model file (docs/FORMAT.md). Saving is
 * atomic (temporary file + rename); loading validates every field. */
CR_API cr_status cr_model_save(const cr_model *m, const char *path);
CR_API cr_status cr_model_load(cr_model **m, const char *path);
/* Load flags (cr_model_load_ex). */
#define CR_LOAD_ALLOW_UNSTABLE 1u  /* accept poles with |lambda| >= 1 */
/* Like cr_model_load, with flags. Without CR_LOAD_ALLOW_UNSTABLE a file with
 * a pole |lambda| >= 1 is refused with CR_EUNSTABLE (the detail names the
 * file, channel, mode and |lambda|); cr_model_load(m, p) is
 * cr_model_load_ex(m, p, 0). */
CR_API cr_status cr_model_load_ex(cr_model **m, const char *path, unsigned flags);

/* Modal <-> polynomial (transfer-function) form of one channel:
 *   H(z) = d + (b[0] z^-1 + b[1] z^-2 + ... + b[N-1] z^-N)
 *              / (a[0] + a[1] z^-1 + ... + a[N] z^-N),   a[0] = 1,
 * so hhat[k+1] is the impulse response of b(z^-1)/a(z^-1) at k (b carries
 * an implicit one-sample delay; d is kept apart).
 * Conditioning: the polynomial form of a high order model is numerically
 * fragile (coefficients of expanded products lose the roots, and roots of
 * clustered poles are ill-conditioned); keep the modal form as the working
 * form. Both functions measure the loss: *rel_err (optional) receives the
 * relative l2 difference between the impulse responses of the two forms over
 * max(4N, 64) samples, and the status is CR_ESINGULAR (outputs still filled,
 * channel still set) when it exceeds CR_POLY_ACCURACY. */
#define CR_POLY_ACCURACY 1e-6
/* b: N entries, a: N + 1 entries, N = cr_model_order(m, c); d optional. */
CR_API cr_status cr_model_to_poly(const cr_model *m, size_t c, double *b, double *a,
                                  double *d, double *rel_err);
/* Sets channel c from a polynomial form of order N (N <= M, a[0] = 1,
 * a[N] != 0): poles are the roots of the companion matrix (LAPACK dgeev),
 * residues by partial fractions. Repeated roots give CR_ESINGULAR. */
CR_API cr_status cr_model_set_channel_poly(cr_model *m, size_t c, size_t N, const double *b,
                                           const double *a, double d, double *rel_err);

/* ======================================================================
 * Fitting (fit.c, fit_bt.c, fit_pencil.c, fit_hna.c, fit_varpro.c)
 * ====================================================================== */
typedef void (*cr_progress_fn)(void *ctx, size_t done, size_t total);

/* The error a fit minimises. */
typedef enum cr_weight {
    CR_WEIGHT_NONE = 0,    /* the l2 error of the horizon (time domain) */
    CR_WEIGHT_OCTAVE = 1   /* audio: every third-octave band from 20 Hz to rate/2
                            * counts equally (docs/MATH.md "Weighted fits"):
                            * band levels in dB plus the band-relative complex
                            * error of the frequency response */
} cr_weight;

typedef struct cr_fit_options {
    cr_method method;      /* default CR_METHOD_AUTO */
    cr_horizon horizon;    /* default CR_HORIZON_WINDOW */
    size_t order;          /* N > 0: fixed order; 0: choose by tol */
    double tol;            /* used when order == 0: smallest N with rel l2 <= tol */
    size_t max_order;      /* cap for tol selection; 0 = min(L - 1, 256) */
    double margin;         /* every |lambda| <= 1 - margin; default 1e-6 */
    int nthreads;          /* <= 0: OpenMP default; clipped to CR_THREADS_PER_PROC
                            * per processor and to C (header, "Thread counts") */
    cr_progress_fn progress; /* may be NULL; called from the calling thread only */
    void *progress_ctx;
    /* Audio (docs/MATH.md "Weighted fits"). */
    cr_weight weight;      /* default CR_WEIGHT_NONE */
    double rate;           /* sample rate in Hz; 0 (default) = unknown. Recorded
                            * in the model; when known, every record gets its
                            * band errors. CR_WEIGHT_OCTAVE and tol_db need it. */
    double tol_db;         /* used when order == 0 and tol_db > 0 (instead of
                            * tol): the smallest N whose band_db_max <= tol_db
                            * (default 0: off) */
} cr_fit_options;

CR_API void cr_fit_options_default(cr_fit_options *o);
/* Fit every channel of the bank h (C, L). On success *out is a new model
 * whose records hold the errors and Hankel bounds of each channel. */
CR_API cr_status cr_fit(const double *h, size_t C, size_t L,
                        const cr_fit_options *o, cr_model **out);

/* ======================================================================
 * Recurrence executor (recurrence.c)
 * ====================================================================== */
/*
 * A stream runs a model as its recurrence (docs/MATH.md, the top), for B
 * independent streams at once:
 *   x_t = lambda (.) x_{t-1} + u_t,
 *   y_t = d u_t + sum_m w_m Re(r_m x_{t-1,m})       (x_{-1} = 0).
 * One object type per precision, cr_stream_d (double) and cr_stream_f
 * (float), with the same verbs. A stream copies the coefficients it needs
 * at create/init time: the model may be destroyed afterwards, and one const
 * model may feed any number of streams in any number of threads.
 *
 * Signals: step takes u (B, C) and writes y (B, C); block and prefill take
 * u (B, C, T) and write y (B, C, T), row-major, channel-major per stream
 * (docs/MATH.md). y may be the same buffer as u (in place); any other overlap
 * is undefined.
 *
 * Non-finite input: step, block and prefill check every input sample first
 * and return CR_ENONFINITE, leaving the state and y untouched, if one is NaN
 * or +-Inf (the detail names stream, channel and sample). With
 * CR_STREAM_NO_CHECK the scan is skipped and a non-finite sample poisons the
 * state of its channel until reset or set_state.
 *
 * Threading: a stream is not shared between threads (it holds the state).
 * step, block and prefill by recurrence never allocate and never lock; when
 * B * C * modes * T is large (>= 65536 slot-steps) they split channel blocks
 * over OpenMP threads (the OpenMP default count, clipped as in "Thread
 * counts" at the top of this header), otherwise they make no OpenMP call at all
 * (CR_STREAM_NO_THREADS keeps everything in the calling thread, for
 * real-time callers). Only prefill by FFT allocates (temporary buffers).
 *
 * Denormals: step, block and prefill by recurrence run with flush-to-zero
 * and denormals-are-zero (x86 SSE MXCSR; the caller's mode is restored on
 * return, and left alone when it already has both). A state decaying in
 * silence would otherwise stall in the denormal range (round(lambda x) == x
 * there for |lambda| near 1) and make every later step about 10x slower
 * (bench/bench_soak); with the flush it decays to 0 (real modes) or settles
 * at a few dozen times the smallest normal number (pairs). Switching the
 * mode costs about 10 ns per call; a caller making many tiny calls can run
 * its thread with FTZ/DAZ set to save it.
 *
 * Float streams keep each pole as a float pair hi + lo (lo = the rounding
 * error of hi), so that poles near the unit circle (|lambda| = 0.9999) are
 * not shifted by float rounding; the state and residues are float.
 * CR_STREAM_F32_FAST drops lo (fewer flops; the pole is then rounded to
 * float, an output error of about 6e-8 / (1 - |lambda|) relative).
 * Where the target has fused multiply-adds (native builds on x86-64 with
 * FMA, ARMv8) the state update is fused, and the float error is that of
 * random rounding, about 6e-8 / sqrt(1 - |lambda|^2) (5e-6 measured at
 * |lambda| = 0.99999, bench_soak); without FMA (portable builds) the
 * unfused rounding acts like a pole error of a few 1e-9 (4.8e-4 there).
 */
typedef struct cr_stream_d cr_stream_d;
typedef struct cr_stream_f cr_stream_f;

/* Flags for create / init (bitwise or). */
#define CR_STREAM_ALLOW_UNSTABLE 0x1u /* accept poles with |lambda| >= 1 */
#define CR_STREAM_NO_CHECK       0x2u /* skip the NaN/Inf scan of input samples */
#define CR_STREAM_NO_THREADS     0x4u /* never use OpenMP threads */
#define CR_STREAM_F32_FAST       0x8u /* float: poles rounded to float, no hi+lo */

typedef enum cr_prefill_method {
    CR_PREFILL_AUTO = 0,        /* the faster one: the recurrence at every T
                                 * measured so far (bench_step "prefill") */
    CR_PREFILL_RECURRENCE = 1,  /* run the recurrence; never allocates */
    CR_PREFILL_FFT = 2          /* one FFT of u per channel, then a Cauchy sum
                                 * per mode (MATH.md "Prefill by FFT");
                                 * allocates temporary buffers */
} cr_prefill_method;

/* The verbs below exist for X = d (R = double) and X = f (R = float):
 *
 * cr_stream_X_create(&s, m, B, flags): a new heap stream for model m and
 *   B >= 1 streams, state zero. Refuses a model with any |lambda| >= 1 with
 *   CR_EUNSTABLE (detail: channel, mode and |lambda|) unless
 *   CR_STREAM_ALLOW_UNSTABLE. Unknown flags: CR_EINVAL. On failure *s = NULL.
 * cr_stream_X_mem_size(m, B, flags, &bytes): bytes of caller memory that
 *   cr_stream_X_init needs (any alignment; includes slack to align).
 * cr_stream_X_init(&s, m, B, flags, mem, bytes): the same stream placed
 *   entirely in mem (caller-owned, >= mem_size bytes, must outlive the
 *   stream); nothing is allocated, then or later except by FFT prefill.
 *   destroy on such a stream does nothing; free mem yourself.
 * cr_stream_X_destroy(s): frees a heap stream; NULL is a no-op.
 * cr_stream_X_reset(s): state back to zero.
 * cr_stream_X_copy(s, &out): a new heap stream with the same coefficients
 *   and state.
 * cr_stream_X_dims(s, &B, &C, &M): the batch, channel and mode counts.
 * cr_stream_X_state_len(s): number of R values in a saved state,
 *   B * C * M * 2: layout (B, C, M, 2) with (re, im) of x for mode j of
 *   channel c (model order; unused modes read 0 and must be set to 0).
 * cr_stream_X_get_state(s, buf, n) / cr_stream_X_set_state(s, buf, n):
 *   save / restore the state exactly (bit for bit); n must equal
 *   state_len. set_state rejects non-finite values and nonzero unused modes.
 * cr_stream_X_step(s, u, y): one sample per stream and channel, u and y
 *   (B, C).
 * cr_stream_X_block(s, u, T, y): T >= 1 samples, u and y (B, C, T);
 *   identical, bit for bit, to T calls of step.
 * cr_stream_X_prefill(s, u, T, y, how): consume a prompt u (B, C, T) from
 *   the current state. y (B, C, T) may be NULL; when given, the outputs are
 *   produced by the recurrence whatever how says. With y == NULL, how picks
 *   the method (AUTO: FFT only when measured faster). The FFT result equals
 *   the recurrence to rounding (about 1e-13 relative in double).
 */
#define CR__STREAM_API(X, R)                                                   \
    CR_API cr_status cr_stream_##X##_create(cr_stream_##X **s, const cr_model *m, \
                                            size_t B, unsigned flags);         \
    CR_API cr_status cr_stream_##X##_mem_size(const cr_model *m, size_t B,     \
                                              unsigned flags, size_t *bytes);  \
    CR_API cr_status cr_stream_##X##_init(cr_stream_##X **s, const cr_model *m, \
                                          size_t B, unsigned flags,            \
                                          void *mem, size_t bytes);            \
    CR_API void cr_stream_##X##_destroy(cr_stream_##X *s);                     \
    CR_API cr_status cr_stream_##X##_reset(cr_stream_##X *s);                  \
    CR_API cr_status cr_stream_##X##_copy(const cr_stream_##X *s,              \
                                          cr_stream_##X **out);                \
    CR_API cr_status cr_stream_##X##_dims(const cr_stream_##X *s, size_t *B,   \
                                          size_t *C, size_t *M);               \
    CR_API size_t cr_stream_##X##_state_len(const cr_stream_##X *s);           \
    CR_API cr_status cr_stream_##X##_get_state(const cr_stream_##X *s, R *buf, \
                                               size_t n);                      \
    CR_API cr_status cr_stream_##X##_set_state(cr_stream_##X *s, const R *buf, \
                                               size_t n);                      \
    CR_API cr_status cr_stream_##X##_step(cr_stream_##X *s, const R *u, R *y); \
    CR_API cr_status cr_stream_##X##_block(cr_stream_##X *s, const R *u,       \
                                           size_t T, R *y);                    \
    CR_API cr_status cr_stream_##X##_prefill(cr_stream_##X *s, const R *u,     \
                                             size_t T, R *y,                   \
                                             cr_prefill_method how);
CR__STREAM_API(d, double)
CR__STREAM_API(f, float)

/* ======================================================================
 * Export (export.c)
 * ====================================================================== */
typedef enum cr_export_precision {
    CR_EXPORT_FLOAT = 0,   /* float32 coefficients, state and samples (default) */
    CR_EXPORT_DOUBLE = 1
} cr_export_precision;

/* Write DIR/NAME.h and DIR/NAME.c (each atomically): a self-contained C99
 * filter (no malloc, no libm, no convrec) with static const coefficients in
 * real arithmetic (a 2x2 rotation block per pair, a scalar per real mode),
 * a state struct NAME_state, void NAME_init(NAME_state *s) and
 * void NAME_process(NAME_state *s, const T *in, T *out, size_t n) over
 * channel-major (C, n) buffers, T = float or double. NAME must be a C
 * identifier (<= 64 characters); DIR must exist. An unstable model is
 * refused (CR_EUNSTABLE). See docs/EMBEDDED.md. */
CR_API cr_status cr_export_c(const cr_model *m, const char *dir, const char *name,
                             cr_export_precision precision);

/* Number formats of the exported C filter (cr_export_c_ex). */
typedef enum cr_export_numeric {
    CR_NUMERIC_FLOAT = 0,  /* float32 samples, coefficients and state (= cr_export_c FLOAT) */
    CR_NUMERIC_DOUBLE = 1, /* float64 (= cr_export_c DOUBLE) */
    CR_NUMERIC_Q31 = 2,    /* int32_t Q31 samples, coefficients and state; 64-bit
                            * accumulators (Cortex-M3/M4 SMULL/SMLAL; M0 via libgcc) */
    CR_NUMERIC_Q15 = 3     /* int16_t Q15 samples, coefficients and state; 32-bit
                            * accumulators (any 32-bit core) */
} cr_export_numeric;

/* output_shift value: choose the smallest shift at which no output can clip. */
#define CR_EXPORT_SHIFT_AUTO (-1)

/* Options of cr_export_c_ex; cr_export_options_default fills the defaults. */
typedef struct cr_export_options {
    cr_export_numeric numeric; /* default CR_NUMERIC_FLOAT */
    /* Fixed point only. The largest accepted error of each channel:
     * hypot(relative l2 error of the quantised coefficients' impulse
     * response over the record's kernel length, rounding noise relative to
     * the output of a full-scale white input); see cr_export_report. 0
     * (default): ten times the channel's err_window but at most 0.1, or
     * 1e-3 when the record has none; INFINITY accepts any error. Not
     * negative or NaN. */
    double max_error;
    /* Fixed point only: the filter writes y 2^-output_shift, saturated to
     * full scale. CR_EXPORT_SHIFT_AUTO (default) picks the smallest shift
     * >= 0 at which no input within full scale can make the output clip;
     * 0..40 forces a shift (the output may then saturate). */
    int output_shift;
} cr_export_options;

/* What cr_export_c_ex measured (fixed point), filled also when it refuses
 * with CR_EPRECISION for an error over budget (zeroed / NaN otherwise). */
typedef struct cr_export_report {
    double error;        /* error of the worst channel (largest error / budget):
                          * hypot(coef_error, noise); NaN for float and double */
    double coef_error;   /* its relative l2 impulse-response error of the quantised
                          * coefficients (exact arithmetic) against the model */
    double noise;        /* its rounding noise, rms relative to the output of a
                          * full-scale white input (SNR = -20 log10(noise) dB) */
    double budget;       /* that channel's max_error */
    size_t channel;      /* the worst channel */
    size_t mode;         /* its largest single contribution to the error: a mode
                          * index of the channel (0..M-1), or SIZE_MAX when it is
                          * the feedthrough and the output rounding */
    double mode_error;   /* that contribution (relative to the channel's norm) */
    size_t horizon;      /* impulse-response samples the errors were taken over */
    int output_shift;    /* the shift used */
} cr_export_report;

CR_API void cr_export_options_default(cr_export_options *o);
/* cr_export_c with options (o may be NULL: defaults). Float and double
 * write the same files as cr_export_c. Q31 and Q15 write the same filter in
 * integer arithmetic (docs/EMBEDDED.md "Fixed point"): poles, weights and d
 * rounded to the format, each mode's input scaled by 2^-e from the l1 gain
 * of its state so that no state or accumulator can overflow for any input
 * within full scale, states truncated toward zero (no limit cycles), the
 * output rounded and saturated. The quantised filter is checked before
 * anything is written: every quantised pole must keep at least half of its
 * distance to the unit circle, the scaling must fit the format, and every
 * channel's error (cr_export_report) must be within max_error; otherwise
 * CR_EPRECISION, with the detail naming the channel and the mode. The
 * errors go to the generated header and to *report (optional). Unstable
 * model: CR_EUNSTABLE. */
CR_API cr_status cr_export_c_ex(const cr_model *m, const char *dir, const char *name,
                                const cr_export_options *o, cr_export_report *report);

typedef enum cr_sos_format {
    CR_SOS_SCIPY = 0,      /* rows [b0 b1 b2 a0 a1 a2] (scipy.signal sos), 6 per section */
    CR_SOS_CMSIS_DF2T = 1  /* rows {b0 b1 b2 -a1 -a2} (arm_biquad_cascade_df2T_f32), 5 */
} cr_sos_format;

/* Number of sections of channel c: one per pair, one per real mode. */
CR_API size_t cr_export_sos_count(const cr_model *m, size_t c);
/* Channel c as parallel sections: y = d u + sum_s section_s(u), each section
 * run on its own from zero state. coef receives *nsec rows (6 or 5 doubles
 * each, by format) in mode order; cap is the room in rows. A pair (lambda, r)
 * gives (2Re r z^-1 - 2Re(r conj lambda) z^-2) / (1 - 2Re lambda z^-1 +
 * |lambda|^2 z^-2); a real mode r z^-1 / (1 - lambda z^-1). nsec and d are
 * optional outputs. */
CR_API cr_status cr_export_sos(const cr_model *m, size_t c, cr_sos_format format,
                               double *coef, size_t cap, size_t *nsec, double *d);
/* All channels' sections in both layouts as a JSON file (atomic):
 * {"format": "convrec-sos", "channels": [{"d": .., "sos": [[6]..],
 *  "cmsis_df2t": [[5]..]}, ..]}. */
CR_API cr_status cr_export_sos_file(const cr_model *m, const char *path);
/* Same as a NUL-terminated string in *out; free it with free(). */
CR_API cr_status cr_export_sos_string(const cr_model *m, char **out);
/* Everything in the model (metadata, per-channel order, d, records with
 * NaN as null, modes with kind, pole, residue) as readable JSON. */
CR_API cr_status cr_export_json(const cr_model *m, const char *path);
/* Same as a NUL-terminated string in *out; free it with free(). */
CR_API cr_status cr_export_json_string(const cr_model *m, char **out);

#ifdef __cplusplus
}
#endif
#endif /* CONVREC_H */
