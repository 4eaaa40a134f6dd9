/* Audio files through libsndfile (include/convrec.h "Audio files").
 *
 * Reading: libsndfile opens anything it knows (by content, not by name)
 * and converts samples to double; PCM of b bits is normalised by 2^(b-1)
 * (libsndfile's default for reads), float files come as stored. What
 * libsndfile does not check, we do: a WAV or AIFF file cut short opens
 * fine, libsndfile quietly lowering the frame count to what is there and
 * saying so only in its log ("data : 40000 (should be 19978)"), so the log
 * is read at open; FLAC and others end early on read, which the frame
 * count of the header shows. NaN/Inf samples are refused.
 *
 * Writing: libsndfile's own double-to-PCM conversion multiplies by
 * 2^(b-1) - 1 (not the 2^(b-1) it divides by on reading), so a read-write
 * round trip would change every sample. PCM is therefore quantised here:
 * q = round(x 2^(b-1)), saturated to [-2^(b-1), 2^(b-1) - 1] (and
 * counted), handed over as 32-bit integers q 2^(32-b) which libsndfile
 * stores exactly. Files are written to a temporary file beside the target
 * and renamed when complete (core/file.c).
 */
#include "core/core.h"

#include <errno.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_CHANNELS 1024
/* frames per libsndfile call (interleaved scratch of CHUNK * C values) */
#define CHUNK 4096

/* ---------------------------------------------------------------------
 * Reading
 * --------------------------------------------------------------------- */
struct cr_audio_reader {
    SNDFILE *sf;
    SF_INFO info;
    char *path;
    size_t C, frames, done;
    double *ibuf;  /* CHUNK * C interleaved */
};

/* libsndfile's log says a chunk is longer than the file holds: the
 * "data :" (WAV, W64, RF64) or "SSND :" (AIFF) line reads "N (should be
 * M)" with M < N, or the parser stopped at a chunk beyond the end. A
 * size of 0 or 0xFFFFFFFF is the placeholder of a streamed WAV, not a
 * cut. */
static int log_says_truncated(SNDFILE *sf)
{
    char *log = malloc(16384);
    if (!log) return 0;
    sf_command(sf, SFC_GET_LOG_INFO, log, 16384);
    log[16383] = '\0';
    int cut = 0;
    for (char *line = log; line && *line && !cut;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        const char *p = line;
        while (*p == ' ') p++;
        unsigned long long n, m;
        if ((strncmp(p, "data", 4) == 0 || strncmp(p, "SSND", 4) == 0) &&
            sscanf(p + 4, " : %llu (should be %llu)", &n, &m) == 2 && m < n && n != 0 &&
            n != 0xFFFFFFFFull)
            cut = 1;
        if (strstr(p, "> file length") != NULL || strstr(p, "not equal to frame count") != NULL)
            cut = 1;
        line = nl ? nl + 1 : NULL;
    }
    free(log);
    return cut;
}

static void fill_info(SNDFILE *sf, const SF_INFO *si, cr_audio_info *info)
{
    memset(info, 0, sizeof *info);
    info->rate = (double)si->samplerate;
    info->channels = (size_t)si->channels;
    info->frames = (size_t)si->frames;
    SF_FORMAT_INFO fi;
    fi.format = si->format & SF_FORMAT_TYPEMASK;
    if (sf_command(sf, SFC_GET_FORMAT_INFO, &fi, sizeof fi) == 0 && fi.name)
        snprintf(info->format, sizeof info->format, "%s", fi.name);
    fi.format = si->format & SF_FORMAT_SUBMASK;
    if (sf_command(sf, SFC_GET_FORMAT_INFO, &fi, sizeof fi) == 0 && fi.name)
        snprintf(info->subtype, sizeof info->subtype, "%s", fi.name);
}

void cr_audio_reader_close(cr_audio_reader *r)
{
    if (!r) return;
    if (r->sf) sf_close(r->sf);
    free(r->ibuf);
    free(r->path);
    free(r);
}

cr_status cr_audio_reader_open(cr_audio_reader **out, const char *path, cr_audio_info *info)
{
    if (!out) return cr__fail(CR_EINVAL, "cr_audio_reader_open: NULL output pointer");
    *out = NULL;
    if (info) memset(info, 0, sizeof *info);
    if (!path || !*path) return cr__fail(CR_EINVAL, "cr_audio_reader_open: no path");
    struct stat st;
    if (stat(path, &st) != 0) return cr__fail(CR_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return cr__fail(CR_EIO, "%s: not a regular file", path);
    cr_audio_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return cr__fail(CR_ENOMEM, "%s: out of memory", path);
    }
    r->sf = sf_open(path, SFM_READ, &r->info);
    if (!r->sf) {
        /* libsndfile's reason, e.g. "File contains data in an unknown
         * format." or "Error in WAV file. No 'fmt ' chunk marker." */
        cr_status s = cr__fail(CR_EFORMAT, "%s: not an audio file libsndfile can read: %s", path,
                               sf_strerror(NULL));
        cr_audio_reader_close(r);
        return s;
    }
    const SF_INFO *si = &r->info;
    cr_status s = CR_OK;
    if (si->channels <= 0)
        s = cr__fail(CR_EFORMAT, "%s: the file has no channels", path);
    else if (si->channels > MAX_CHANNELS)
        s = cr__fail(CR_EUNSUPPORTED, "%s: %d channels (at most %d)", path, si->channels,
                     MAX_CHANNELS);
    else if (!(si->samplerate > 0))
        s = cr__fail(CR_EFORMAT, "%s: sample rate %d is not positive", path, si->samplerate);
    else if (si->frames <= 0)
        s = cr__fail(CR_EFORMAT, "%s: the file has no samples (zero frames)", path);
    else if ((uint64_t)si->frames > CR_MAX_ELEMS / (uint64_t)si->channels)
        s = cr__fail(CR_EOVERFLOW, "%s: %lld frames is absurdly large", path,
                     (long long)si->frames);
    else if (log_says_truncated(r->sf))
        s = cr__fail(CR_EFORMAT, "%s: truncated: the file ends before the samples its header "
                     "announces", path);
    if (s == CR_OK) {
        r->C = (size_t)si->channels;
        r->frames = (size_t)si->frames;
        r->ibuf = malloc((size_t)CHUNK * r->C * sizeof *r->ibuf);
        if (!r->ibuf) s = cr__fail(CR_ENOMEM, "%s: out of memory", path);
    }
    if (s != CR_OK) {
        cr_audio_reader_close(r);
        return s;
    }
    if (info) fill_info(r->sf, si, info);
    *out = r;
    return CR_OK;
}

cr_status cr_audio_reader_read(cr_audio_reader *r, double *buf, size_t ld, size_t nmax,
                               size_t *got)
{
    if (got) *got = 0;
    if (!r || !got) return cr__fail(CR_EINVAL, "cr_audio_reader_read: NULL argument");
    if (nmax > 0 && !buf) return cr__fail(CR_EINVAL, "cr_audio_reader_read: NULL buffer");
    if (r->C > 1 && ld < nmax)
        return cr__fail(CR_EINVAL, "cr_audio_reader_read: leading dimension %zu < %zu frames", ld,
                        nmax);
    size_t n = 0;
    while (n < nmax && r->done < r->frames) {
        size_t want = nmax - n;
        if (want > CHUNK) want = CHUNK;
        if (want > r->frames - r->done) want = r->frames - r->done;
        sf_count_t k = sf_readf_double(r->sf, r->ibuf, (sf_count_t)want);
        if (k <= 0) break;
        for (size_t i = 0; i < (size_t)k; i++)
            for (size_t c = 0; c < r->C; c++) {
                double x = r->ibuf[i * r->C + c];
                if (!isfinite(x))
                    return cr__fail(CR_ENONFINITE, "%s: channel %zu, frame %zu: sample is %s",
                                    r->path, c, r->done + i, isnan(x) ? "NaN" : "infinite");
                buf[c * ld + n + i] = x;
            }
        n += (size_t)k;
        r->done += (size_t)k;
        if ((size_t)k < want) break;
    }
    if (n < nmax && r->done < r->frames) {
        const char *why = sf_error(r->sf) != SF_ERR_NO_ERROR ? sf_strerror(r->sf) : "";
        return cr__fail(CR_EFORMAT, "%s: truncated: %zu of the %zu frames its header announces "
                        "could be read%s%s", r->path, r->done, r->frames, *why ? ": " : "", why);
    }
    *got = n;
    return CR_OK;
}

cr_status cr_audio_read(const char *path, cr_array *out, cr_audio_info *info)
{
    if (!out) return cr__fail(CR_EINVAL, "cr_audio_read: NULL output");
    memset(out, 0, sizeof *out);
    cr_audio_reader *r;
    cr_audio_info in;
    cr_status s = cr_audio_reader_open(&r, path, &in);
    if (s != CR_OK) return s;
    size_t C = r->C, T = r->frames;
    double *x = cr__alloc_big(C * T * sizeof *x);
    if (!x) {
        cr_audio_reader_close(r);
        return cr__fail(CR_ENOMEM, "%s: out of memory (%zu x %zu samples)", path, C, T);
    }
    size_t got = 0;
    s = cr_audio_reader_read(r, x, T, T, &got);
    if (s == CR_OK && got != T)
        s = cr__fail(CR_EFORMAT, "%s: truncated: %zu of %zu frames", path, got, T);
    cr_audio_reader_close(r);
    if (s != CR_OK) {
        free(x);
        return s;
    }
    out->dtype = CR_FLOAT64;
    out->ndim = 2;
    out->shape[0] = C;
    out->shape[1] = T;
    out->shape[2] = 1;
    out->data = x;
    if (info) *info = in;
    return CR_OK;
}

/* ---------------------------------------------------------------------
 * Writing
 * --------------------------------------------------------------------- */
struct cr_audio_writer {
    SNDFILE *sf;
    FILE *f;          /* the temporary file (libsndfile writes through its fd) */
    char *path, *tmp;
    size_t C;
    int bits;         /* PCM bits; 0 for float output */
    int failed;
    size_t clipped;
    double *dbuf;     /* CHUNK * C interleaved (float output) */
    int *ibuf;        /* CHUNK * C interleaved (PCM output) */
};

cr_status cr_audio_subtype_parse(const char *s, cr_audio_subtype *out)
{
    static const struct {
        const char *name;
        cr_audio_subtype t;
    } tab[] = {{"default", CR_AUDIO_DEFAULT}, {"float", CR_AUDIO_FLOAT}, {"float32", CR_AUDIO_FLOAT},
               {"double", CR_AUDIO_DOUBLE},   {"float64", CR_AUDIO_DOUBLE}, {"pcm16", CR_AUDIO_PCM16},
               {"pcm24", CR_AUDIO_PCM24},     {"pcm32", CR_AUDIO_PCM32}, {"pcm8", CR_AUDIO_PCM8}};
    if (!s || !out) return cr__fail(CR_EINVAL, "cr_audio_subtype_parse: NULL argument");
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcasecmp(s, tab[i].name) == 0) {
            *out = tab[i].t;
            return CR_OK;
        }
    return cr__fail(CR_EINVAL, "unknown sample format '%s' (float, double, pcm16, pcm24, pcm32, "
                    "pcm8)", s);
}

/* The container of path's extension: libsndfile's own list of major
 * formats (SFC_GET_FORMAT_MAJOR), plus the usual aliases. */
static int major_of_path(const char *path)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash) || !dot[1]) return 0;
    const char *ext = dot + 1;
    static const struct {
        const char *ext;
        int major;
    } alias[] = {{"wave", SF_FORMAT_WAV}, {"aif", SF_FORMAT_AIFF}, {"aifc", SF_FORMAT_AIFF},
                 {"snd", SF_FORMAT_AU},   {"oga", SF_FORMAT_OGG},  {"opus", SF_FORMAT_OGG}};
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (strcasecmp(ext, alias[i].ext) == 0) return alias[i].major;
    int n = 0;
    sf_command(NULL, SFC_GET_FORMAT_MAJOR_COUNT, &n, sizeof n);
    for (int i = 0; i < n; i++) {
        SF_FORMAT_INFO fi;
        fi.format = i;
        if (sf_command(NULL, SFC_GET_FORMAT_MAJOR, &fi, sizeof fi) != 0) continue;
        if (fi.extension && strcasecmp(ext, fi.extension) == 0) return fi.format & SF_FORMAT_TYPEMASK;
    }
    return 0;
}

static const char *subtype_name(cr_audio_subtype t)
{
    switch (t) {
    case CR_AUDIO_FLOAT: return "float";
    case CR_AUDIO_DOUBLE: return "double";
    case CR_AUDIO_PCM16: return "pcm16";
    case CR_AUDIO_PCM24: return "pcm24";
    case CR_AUDIO_PCM32: return "pcm32";
    case CR_AUDIO_PCM8: return "pcm8";
    default: return "default";
    }
}

/* libsndfile subtype and PCM bits of t for the container major. */
static int sub_format(int major, cr_audio_subtype t, int *bits)
{
    *bits = 0;
    switch (t) {
    case CR_AUDIO_FLOAT: return SF_FORMAT_FLOAT;
    case CR_AUDIO_DOUBLE: return SF_FORMAT_DOUBLE;
    case CR_AUDIO_PCM16: *bits = 16; return SF_FORMAT_PCM_16;
    case CR_AUDIO_PCM24: *bits = 24; return SF_FORMAT_PCM_24;
    case CR_AUDIO_PCM32: *bits = 32; return SF_FORMAT_PCM_32;
    case CR_AUDIO_PCM8:
        *bits = 8;
        /* 8-bit WAV is unsigned by definition; libsndfile keeps the meaning */
        return major == SF_FORMAT_WAV || major == SF_FORMAT_W64 || major == SF_FORMAT_RF64
                   ? SF_FORMAT_PCM_U8 : SF_FORMAT_PCM_S8;
    default: return 0;
    }
}

static void writer_free(cr_audio_writer *w)
{
    free(w->dbuf);
    free(w->ibuf);
    free(w->path);
    free(w->tmp);
    free(w);
}

cr_status cr_audio_writer_open(cr_audio_writer **out, const char *path, double rate, size_t C,
                               cr_audio_subtype subtype)
{
    if (!out) return cr__fail(CR_EINVAL, "cr_audio_writer_open: NULL output pointer");
    *out = NULL;
    if (!path || !*path) return cr__fail(CR_EINVAL, "cr_audio_writer_open: no path");
    if (C == 0 || C > MAX_CHANNELS)
        return cr__fail(CR_EINVAL, "%s: %zu channels (1 to %d can be written)", path, C,
                        MAX_CHANNELS);
    if (!(rate > 0) || !isfinite(rate) || rate > 2147483647.0 || rate != floor(rate))
        return cr__fail(CR_EINVAL, "%s: sample rate %g must be a positive whole number of Hz",
                        path, rate);
    if (subtype < CR_AUDIO_DEFAULT || subtype > CR_AUDIO_PCM8)
        return cr__fail(CR_EINVAL, "%s: unknown sample format %d", path, (int)subtype);
    int major = major_of_path(path);
    if (!major)
        return cr__fail(CR_EUNSUPPORTED, "%s: unknown audio file extension (.wav, .flac, .aiff, "
                        ".au, .caf, .w64, .rf64, .ogg, ... or .npy)", path);
    SF_INFO si;
    memset(&si, 0, sizeof si);
    si.samplerate = (int)rate;
    si.channels = (int)C;
    int bits, sub;
    if (subtype == CR_AUDIO_DEFAULT) {
        sub = sub_format(major, CR_AUDIO_FLOAT, &bits);
        si.format = major | sub;
        if (!sf_format_check(&si)) sub = sub_format(major, CR_AUDIO_PCM24, &bits);
    } else {
        sub = sub_format(major, subtype, &bits);
    }
    if (major == SF_FORMAT_OGG) sub = SF_FORMAT_VORBIS, bits = 0; /* lossy: float path */
    si.format = major | sub;
    if (!sf_format_check(&si))
        return cr__fail(CR_EUNSUPPORTED, "%s: this container cannot hold %s samples (%zu channels "
                        "at %g Hz)", path, subtype_name(subtype), C, rate);

    cr_audio_writer *w = calloc(1, sizeof *w);
    size_t cap = strlen(path) + 16;
    if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(cap)) ||
        !(bits ? (void *)(w->ibuf = malloc((size_t)CHUNK * C * sizeof *w->ibuf))
               : (void *)(w->dbuf = malloc((size_t)CHUNK * C * sizeof *w->dbuf)))) {
        if (w) writer_free(w);
        return cr__fail(CR_ENOMEM, "%s: out of memory", path);
    }
    w->C = C;
    w->bits = bits;
    w->f = cr__tmpfile_beside(path, w->tmp, cap);
    if (!w->f) {
        cr_status s = cr__fail(CR_EIO, "%s: cannot create a temporary file in its folder: %s",
                               path, strerror(errno));
        writer_free(w);
        return s;
    }
    w->sf = sf_open_fd(fileno(w->f), SFM_WRITE, &si, 0);
    if (!w->sf) {
        cr_status s = cr__fail(CR_EIO, "%s: libsndfile cannot write it: %s", path,
                               sf_strerror(NULL));
        cr__commit_tmpfile(w->f, w->tmp, path, 0);
        writer_free(w);
        return s;
    }
    *out = w;
    return CR_OK;
}

cr_status cr_audio_writer_write(cr_audio_writer *w, const double *buf, size_t ld, size_t n)
{
    if (!w) return cr__fail(CR_EINVAL, "cr_audio_writer_write: NULL writer");
    if (n == 0) return CR_OK;
    if (!buf) return cr__fail(CR_EINVAL, "cr_audio_writer_write: NULL buffer");
    if (w->C > 1 && ld < n)
        return cr__fail(CR_EINVAL, "cr_audio_writer_write: leading dimension %zu < %zu frames", ld,
                        n);
    if (w->failed) return cr__fail(CR_EIO, "%s: an earlier write failed", w->path);
    const double q = w->bits ? ldexp(1.0, w->bits - 1) : 0.0;
    const int shift = 32 - w->bits;
    for (size_t t0 = 0; t0 < n; t0 += CHUNK) {
        size_t k = n - t0 < CHUNK ? n - t0 : CHUNK;
        for (size_t i = 0; i < k; i++)
            for (size_t c = 0; c < w->C; c++) {
                double x = buf[c * ld + t0 + i];
                if (!isfinite(x)) {
                    w->failed = 1;
                    return cr__fail(CR_ENONFINITE, "%s: channel %zu, frame %zu: sample is not "
                                    "finite", w->path, c, t0 + i);
                }
                if (!w->bits) {
                    w->dbuf[i * w->C + c] = x;
                    continue;
                }
                /* round to the nearest step, saturate (never wrap) */
                double v = nearbyint(x * q);
                if (v > q - 1.0) {
                    v = q - 1.0;
                    w->clipped++;
                } else if (v < -q) {
                    v = -q;
                    w->clipped++;
                }
                /* as a 32-bit integer: libsndfile keeps the top bits bits */
                w->ibuf[i * w->C + c] = (int)(int32_t)((int64_t)v * ((int64_t)1 << shift));
            }
        sf_count_t put = w->bits ? sf_writef_int(w->sf, w->ibuf, (sf_count_t)k)
                                 : sf_writef_double(w->sf, w->dbuf, (sf_count_t)k);
        if (put != (sf_count_t)k) {
            w->failed = 1;
            return cr__fail(CR_EIO, "%s: write failed: %s", w->path, sf_strerror(w->sf));
        }
    }
    return CR_OK;
}

size_t cr_audio_writer_clipped(const cr_audio_writer *w) { return w ? w->clipped : 0; }

cr_status cr_audio_writer_close(cr_audio_writer *w, int commit)
{
    if (!w) return CR_OK;
    int ok = commit && !w->failed;
    if (w->sf) {
        int e = sf_close(w->sf);
        if (e != 0) ok = 0;
    }
    cr_status s = cr__commit_tmpfile(w->f, w->tmp, w->path, ok);
    if (!commit) s = CR_OK; /* nothing was asked to be kept */
    else if (w->failed) s = cr__fail(CR_EIO, "%s: not written (an earlier write failed)", w->path);
    writer_free(w);
    return s;
}

cr_status cr_audio_write(const char *path, const cr_array *a, double rate,
                         cr_audio_subtype subtype, size_t *clipped)
{
    if (clipped) *clipped = 0;
    if (!a || !a->data) return cr__fail(CR_EINVAL, "cr_audio_write: NULL array");
    if (a->dtype != CR_FLOAT32 && a->dtype != CR_FLOAT64)
        return cr__fail(CR_EDTYPE, "cr_audio_write: unsupported dtype");
    if (a->ndim != 1 && a->ndim != 2)
        return cr__fail(CR_ESHAPE, "%s: audio is (T,) or (C, T), not %d-dimensional",
                        path ? path : "", a->ndim);
    size_t C = a->ndim == 1 ? 1 : a->shape[0], T = a->ndim == 1 ? a->shape[0] : a->shape[1];
    if (T == 0) return cr__fail(CR_ESHAPE, "%s: no samples to write", path ? path : "");
    cr_audio_writer *w;
    cr_status s = cr_audio_writer_open(&w, path, rate, C, subtype);
    if (s != CR_OK) return s;
    if (a->dtype == CR_FLOAT64) {
        s = cr_audio_writer_write(w, a->data, T, T);
    } else {
        /* widen a block of frames at a time */
        double *blk = malloc((size_t)CHUNK * C * sizeof *blk);
        if (!blk) s = cr__fail(CR_ENOMEM, "%s: out of memory", path);
        const float *x = a->data;
        for (size_t t0 = 0; s == CR_OK && t0 < T; t0 += CHUNK) {
            size_t k = T - t0 < CHUNK ? T - t0 : CHUNK;
            for (size_t c = 0; c < C; c++)
                for (size_t i = 0; i < k; i++) blk[c * CHUNK + i] = x[c * T + t0 + i];
            s = cr_audio_writer_write(w, blk, CHUNK, k);
        }
        free(blk);
    }
    if (clipped) *clipped = cr_audio_writer_clipped(w);
    if (s != CR_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", cr_error_detail());
        cr_audio_writer_close(w, 0);
        return cr__fail(s, "%s", msg);
    }
    return cr_audio_writer_close(w, 1);
}
