/* nanokws._frontend: the firmware's C frontend (firmware/lib/frontend) as a CPython extension.
 * Plain C API + buffer protocol (no numpy headers). The numpy-facing checks and the friendly
 * errors live in nanokws/features/__init__.py; this layer still validates every buffer. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "nk_frontend.h"

/* Every NK_FE_* parameter, so Python never retypes one. */
static PyObject *fe_config(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
#define NK_PUT(name)                                       \
    do {                                                   \
        PyObject *v = PyLong_FromLong((long)(name));       \
        if (!v || PyDict_SetItemString(d, #name, v) < 0) { \
            Py_XDECREF(v);                                 \
            Py_DECREF(d);                                  \
            return NULL;                                   \
        }                                                  \
        Py_DECREF(v);                                      \
    } while (0)
    NK_PUT(NK_FE_SAMPLE_RATE);
    NK_PUT(NK_FE_WINDOW_SAMPLES);
    NK_PUT(NK_FE_HOP_SAMPLES);
    NK_PUT(NK_FE_FFT_SIZE);
    NK_PUT(NK_FE_NUM_CHANNELS);
    NK_PUT(NK_FE_LOWER_HZ);
    NK_PUT(NK_FE_UPPER_HZ);
    NK_PUT(NK_FE_CLIP_SAMPLES);
    NK_PUT(NK_FE_CLIP_FRAMES);
    NK_PUT(NK_FE_LOG_SCALE_MILLI);
    NK_PUT(NK_FE_LOG_OFFSET_MILLI);
    NK_PUT(NK_FE_LOG_FLOOR_EXP10);
    NK_PUT(NK_FE_OUTPUT_SHIFT);
#undef NK_PUT
    return d;
}

/* A C-contiguous view with its format, so dtype and shape can be checked. */
static int get_view(PyObject *obj, Py_buffer *view, int writable) {
    return PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0));
}

static int is_int16(const Py_buffer *b) {
    return b->itemsize == 2 && b->format &&
           (strcmp(b->format, "h") == 0 || strcmp(b->format, "<h") == 0 || strcmp(b->format, "=h") == 0);
}

static size_t frames_for(size_t samples) {
    return samples < NK_FE_WINDOW_SAMPLES ? 0 : (samples - NK_FE_WINDOW_SAMPLES) / NK_FE_HOP_SAMPLES + 1;
}

/* compute(audio: 1-D C-contiguous int16 buffer) -> bytes of [frames][channels] int8 */
static PyObject *fe_compute(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer in;
    PyObject *obj;
    if (!PyArg_ParseTuple(args, "O", &obj) || get_view(obj, &in, 0) < 0)
        return NULL;
    if (!is_int16(&in) || in.ndim != 1) {
        PyBuffer_Release(&in);
        PyErr_SetString(PyExc_TypeError, "audio must be a 1-D contiguous int16 buffer");
        return NULL;
    }
    const size_t samples = (size_t)in.shape[0];
    const size_t frames = frames_for(samples);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(frames * NK_FE_NUM_CHANNELS));
    if (!out) {
        PyBuffer_Release(&in);
        return NULL;
    }
    int8_t *dst = (int8_t *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS nk_frontend_compute_clip((const int16_t *)in.buf, samples, dst, frames);
    Py_END_ALLOW_THREADS PyBuffer_Release(&in);
    return out;
}

/* compute_stream(audio) -> bytes: the same through nk_frontend_push_hop, whole hops only. */
static PyObject *fe_compute_stream(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer in;
    PyObject *obj;
    if (!PyArg_ParseTuple(args, "O", &obj) || get_view(obj, &in, 0) < 0)
        return NULL;
    if (!is_int16(&in) || in.ndim != 1) {
        PyBuffer_Release(&in);
        PyErr_SetString(PyExc_TypeError, "audio must be a 1-D contiguous int16 buffer");
        return NULL;
    }
    const size_t hops = (size_t)in.shape[0] / NK_FE_HOP_SAMPLES;
    const size_t frames = hops > 0 ? hops - 1 : 0;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(frames * NK_FE_NUM_CHANNELS));
    if (!out) {
        PyBuffer_Release(&in);
        return NULL;
    }
    int8_t *dst = (int8_t *)PyBytes_AS_STRING(out);
    const int16_t *src = (const int16_t *)in.buf;
    Py_BEGIN_ALLOW_THREADS nk_frontend_t fe;
    nk_frontend_init(&fe);
    size_t written = 0;
    for (size_t h = 0; h < hops; h++) {
        written += (size_t)nk_frontend_push_hop(&fe, src + h * NK_FE_HOP_SAMPLES,
                                                dst + written * NK_FE_NUM_CHANNELS);
    }
    Py_END_ALLOW_THREADS PyBuffer_Release(&in);
    return out;
}

/* compute_batch(audio [n][samples] int16, out [n][frames][channels] int8, writable) -> None */
static PyObject *fe_compute_batch(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer in, out;
    PyObject *in_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OO", &in_obj, &out_obj) || get_view(in_obj, &in, 0) < 0)
        return NULL;
    if (get_view(out_obj, &out, 1) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    PyObject *result = NULL;
    if (!is_int16(&in) || in.ndim != 2) {
        PyErr_SetString(PyExc_TypeError, "audio must be a 2-D contiguous int16 buffer");
        goto done;
    }
    const size_t clips = (size_t)in.shape[0], samples = (size_t)in.shape[1];
    const size_t frames = frames_for(samples);
    if (out.itemsize != 1 || (size_t)out.len != clips * frames * NK_FE_NUM_CHANNELS) {
        PyErr_SetString(PyExc_ValueError, "out must be an int8 buffer of clips * frames * channels bytes");
        goto done;
    }
    const int16_t *src = (const int16_t *)in.buf;
    int8_t *dst = (int8_t *)out.buf;
    Py_BEGIN_ALLOW_THREADS for (size_t i = 0; i < clips; i++) {
        nk_frontend_compute_clip(src + i * samples, samples, dst + i * frames * NK_FE_NUM_CHANNELS, frames);
    }
    Py_END_ALLOW_THREADS Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"config", fe_config, METH_NOARGS, "dict of the NK_FE_* parameters in nk_frontend_config.h"},
    {"compute", fe_compute, METH_VARARGS, "compute(int16 1-D buffer) -> bytes [frames][channels] int8"},
    {"compute_stream", fe_compute_stream, METH_VARARGS,
     "compute_stream(int16 1-D buffer) -> bytes, through nk_frontend_push_hop (whole hops)"},
    {"compute_batch", fe_compute_batch, METH_VARARGS,
     "compute_batch(int16 [n][samples] buffer, writable int8 [n][frames][channels] buffer); GIL released"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_frontend",
    "The firmware feature frontend (firmware/lib/frontend) and the kernels' "
    "compile-time contracts (firmware/lib/kernels, compiler/_kernels_module.c).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL};

/* compiler/_kernels_module.c: the kernels' layouts, tables and scratch sizes for the model compiler. */
extern PyMethodDef nk_kernels_methods[];
int nk_kernels_add_constants(PyObject *m);

PyMODINIT_FUNC PyInit__frontend(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && (PyModule_AddFunctions(m, nk_kernels_methods) < 0 || nk_kernels_add_constants(m) < 0)) {
        Py_CLEAR(m);
    }
    return m;
}
