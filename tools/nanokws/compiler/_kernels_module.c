/* The kernels' compile-time contracts (firmware/lib/kernels: nk_kernels.h, nk_kernels_pack.h) as
 * functions of the nanokws._frontend extension, so the model compiler (compiler/lower.py) takes
 * every weight layout, folded bias, requantisation table, precondition and scratch size from the C
 * the kernels are built with instead of a Python copy. Plain C API + buffer protocol; every buffer
 * is checked for its item size and length. Registered by _frontend_module.c's PyInit. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nk_kernels.h"
#include "nk_kernels_pack.h"

/* nk_conv_params_t's fields in declaration order (the compiler's C initialisers list them so). */
/* One X-macro list, laid out by hand: clang-format's layout of it is not stable. */
// clang-format off
#define NK_CONV_FIELDS(X)                                                                         \
    X(in_h) X(in_w) X(in_c) X(out_h) X(out_w) X(out_c) X(k_h) X(k_w) X(stride_h) X(stride_w)      \
    X(pad_h) X(pad_w) X(depth_mult) X(in_offset) X(out_offset) X(act_min) X(act_max)
// clang-format on
#define NK_COUNT(f) +1
_Static_assert(sizeof(nk_conv_params_t) == (0 NK_CONV_FIELDS(NK_COUNT)) * sizeof(int32_t),
               "NK_CONV_FIELDS must list every field of nk_conv_params_t");

static int get_int32(PyObject *obj, const char *what, int32_t *out) {
    const long long v = PyLong_AsLongLong(obj);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < INT32_MIN || v > INT32_MAX) {
        PyErr_Format(PyExc_OverflowError, "%s = %lld does not fit int32", what, v);
        return -1;
    }
    *out = (int32_t)v;
    return 0;
}

/* A dict of nk_conv_params_t fields (missing ones are 0, as the compiler's initialisers write them). */
static int conv_params(PyObject *d, nk_conv_params_t *p) {
    memset(p, 0, sizeof *p);
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "params must be a dict of nk_conv_params_t fields");
        return -1;
    }
#define NK_GET(f)                                     \
    {                                                 \
        PyObject *item = PyDict_GetItemString(d, #f); \
        if (item && get_int32(item, #f, &p->f) < 0)   \
            return -1;                                \
    }
    NK_CONV_FIELDS(NK_GET)
#undef NK_GET
    return 0;
}

/* Buffers start zeroed ({0}) and are released unconditionally: PyBuffer_Release ignores one never
 * obtained (obj NULL, as a failed or released view leaves it). */

/* A C-contiguous buffer of n items of `itemsize` bytes (n < 0: any count, returned in *n). */
static int get_array(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, Py_ssize_t n, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (view->itemsize != itemsize || view->len % itemsize != 0 || (n >= 0 && view->len / itemsize != n)) {
        if (n >= 0) {
            PyErr_Format(PyExc_ValueError, "%s must be a contiguous array of %zd %zd-byte integers", what, n,
                         itemsize);
        } else {
            PyErr_Format(PyExc_ValueError, "%s must be a contiguous array of %zd-byte integers", what,
                         itemsize);
        }
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *status_error(const char *fn, nk_pack_status_t st) {
    PyErr_Format(PyExc_ValueError, "%s: invalid arguments (status %d)", fn, (int)st);
    return NULL;
}

/* conv2d_fast_scratch_bytes(params) / dwconv2d_fast_scratch_bytes(params) -> int */
static PyObject *k_conv_scratch(PyObject *self, PyObject *arg) {
    (void)self;
    nk_conv_params_t p;
    if (conv_params(arg, &p) < 0)
        return NULL;
    return PyLong_FromLong((long)nk_conv2d_fast_scratch_bytes(&p));
}

static PyObject *k_dw_scratch(PyObject *self, PyObject *arg) {
    (void)self;
    nk_conv_params_t p;
    if (conv_params(arg, &p) < 0)
        return NULL;
    return PyLong_FromLong((long)nk_dwconv2d_fast_scratch_bytes(&p));
}

/* conv_params_fields() -> tuple of nk_conv_params_t's field names, in order */
static PyObject *k_conv_fields(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
#define NK_NAME(f) #f,
    static const char *const names[] = {NK_CONV_FIELDS(NK_NAME)};
#undef NK_NAME
    const Py_ssize_t n = (Py_ssize_t)(sizeof names / sizeof names[0]);
    PyObject *t = PyTuple_New(n);
    if (!t)
        return NULL;
    for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject *s = PyUnicode_FromString(names[i]);
        if (!s) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    return t;
}

/* fast_fold_bias(w int8, rows, k, row_step, k_step, bias int32[rows] | None, in_offset) -> bytes int64[rows] */
static PyObject *k_fold_bias(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *w_obj, *bias_obj;
    int rows, k, row_step, k_step, in_offset;
    if (!PyArg_ParseTuple(args, "OiiiiOi", &w_obj, &rows, &k, &row_step, &k_step, &bias_obj, &in_offset))
        return NULL;
    if (rows < 1 || k < 1 || row_step < 0 || k_step < 0)
        return status_error("nk_fast_fold_bias", NK_PACK_ARG_ERROR);
    Py_buffer w = {0}, bias = {0};
    if (get_array(w_obj, &w, 1, -1, "w") < 0)
        return NULL;
    PyObject *out = NULL;
    const long long last = (long long)(rows - 1) * row_step + (long long)(k - 1) * k_step;
    if (last >= w.len) {
        PyErr_SetString(PyExc_ValueError, "w is shorter than rows x k at these steps");
        goto done;
    }
    if (bias_obj != Py_None && get_array(bias_obj, &bias, 4, rows, "bias") < 0)
        goto done;
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)rows * 8);
    if (!out)
        goto done;
    const nk_pack_status_t st = nk_fast_fold_bias((const int8_t *)w.buf, rows, k, row_step, k_step,
                                                  bias.buf ? (const int32_t *)bias.buf : NULL, in_offset,
                                                  (int64_t *)PyBytes_AS_STRING(out));
    if (st != NK_PACK_OK) {
        Py_CLEAR(out);
        status_error("nk_fast_fold_bias", st);
    }
done:
    PyBuffer_Release(&w);
    PyBuffer_Release(&bias);
    return out;
}

/* fast_check_bounded(w int8, rows, k, row_step, k_step, bias_f int64[rows], shift int32[rows]) -> bool */
static PyObject *k_check_bounded(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *w_obj, *bf_obj, *shift_obj;
    int rows, k, row_step, k_step;
    if (!PyArg_ParseTuple(args, "OiiiiOO", &w_obj, &rows, &k, &row_step, &k_step, &bf_obj, &shift_obj))
        return NULL;
    if (rows < 1 || k < 1 || row_step < 0 || k_step < 0) {
        return status_error("nk_fast_check_bounded", NK_PACK_ARG_ERROR);
    }
    Py_buffer w = {0}, bf = {0}, shift = {0};
    if (get_array(w_obj, &w, 1, -1, "w") < 0)
        return NULL;
    PyObject *out = NULL;
    const long long last = (long long)(rows - 1) * row_step + (long long)(k - 1) * k_step;
    if (last >= w.len) {
        PyErr_SetString(PyExc_ValueError, "w is shorter than rows x k at these steps");
        goto done;
    }
    if (get_array(bf_obj, &bf, 8, rows, "bias_f") < 0 || get_array(shift_obj, &shift, 4, rows, "shift") < 0) {
        goto done;
    }
    const nk_pack_status_t st = nk_fast_check_bounded((const int8_t *)w.buf, rows, k, row_step, k_step,
                                                      (const int64_t *)bf.buf, (const int32_t *)shift.buf);
    if (st == NK_PACK_ARG_ERROR) {
        status_error("nk_fast_check_bounded", st);
    } else {
        out = PyBool_FromLong(st == NK_PACK_OK);
    }
done:
    PyBuffer_Release(&w);
    PyBuffer_Release(&bf);
    PyBuffer_Release(&shift);
    return out;
}

/* gemm_order(out_c, k) / dw_fast_order(taps, channels) -> bytes int32[a * b] */
static PyObject *order(PyObject *args, const char *fn, nk_pack_status_t (*f)(int32_t, int32_t, int32_t *)) {
    int a, b;
    if (!PyArg_ParseTuple(args, "ii", &a, &b))
        return NULL;
    if (a < 1 || b < 1 || (long long)a * b > INT32_MAX)
        return status_error(fn, NK_PACK_ARG_ERROR);
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)a * b * 4);
    if (!out)
        return NULL;
    const nk_pack_status_t st = f(a, b, (int32_t *)PyBytes_AS_STRING(out));
    if (st != NK_PACK_OK) {
        Py_DECREF(out);
        return status_error(fn, st);
    }
    return out;
}

static PyObject *k_gemm_order(PyObject *self, PyObject *args) {
    (void)self;
    return order(args, "nk_gemm_order", nk_gemm_order);
}

static PyObject *k_dw_fast_order(PyObject *self, PyObject *args) {
    (void)self;
    return order(args, "nk_dw_fast_order", nk_dw_fast_order);
}

/* conv_rq_fill(bias_f int32[n], mult int32[n], shift int32[n], out_offset) -> bytes int32[NK_RQ_WORDS n] */
static PyObject *k_rq_fill(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *bf_obj, *mult_obj, *shift_obj;
    int out_offset;
    if (!PyArg_ParseTuple(args, "OOOi", &bf_obj, &mult_obj, &shift_obj, &out_offset))
        return NULL;
    Py_buffer bf = {0}, mult = {0}, shift = {0};
    if (get_array(bf_obj, &bf, 4, -1, "bias_f") < 0)
        return NULL;
    const Py_ssize_t n = bf.len / 4;
    PyObject *out = NULL;
    if (get_array(mult_obj, &mult, 4, n, "mult") < 0 || get_array(shift_obj, &shift, 4, n, "shift") < 0)
        goto done;
    out = PyBytes_FromStringAndSize(NULL, n * NK_RQ_WORDS * 4);
    if (!out)
        goto done;
    nk_conv_rq_fill((int32_t *)PyBytes_AS_STRING(out), (const int32_t *)bf.buf, (const int32_t *)mult.buf,
                    (const int32_t *)shift.buf, out_offset, (int32_t)n);
done:
    PyBuffer_Release(&bf);
    PyBuffer_Release(&mult);
    PyBuffer_Release(&shift);
    return out;
}

/* conv2d_fast_pack(params, w int8, bias int32 | None, mult int32, shift int32)
 *   -> (w_packed bytes, rq bytes int32[NK_RQ_WORDS out_c]), or None when the preconditions fail
 * dwconv2d_fast_pack(params, w int8, bias int32 | None, shift int32)
 *   -> (w_packed bytes, bias_f bytes int32[out_c]), or None when the preconditions fail */
static PyObject *pack(PyObject *args, int dw) {
    PyObject *p_obj, *w_obj, *bias_obj, *mult_obj = NULL, *shift_obj;
    const int ok = dw ? PyArg_ParseTuple(args, "OOOO", &p_obj, &w_obj, &bias_obj, &shift_obj)
                      : PyArg_ParseTuple(args, "OOOOO", &p_obj, &w_obj, &bias_obj, &mult_obj, &shift_obj);
    const char *fn = dw ? "nk_dwconv2d_fast_pack" : "nk_conv2d_fast_pack";
    nk_conv_params_t p;
    if (!ok || conv_params(p_obj, &p) < 0)
        return NULL;
    if (p.out_c < 1 || p.in_c < 1 || p.k_h < 1 || p.k_w < 1 ||
        (long long)p.k_h * p.k_w * (dw ? 1 : p.in_c) * p.out_c > INT32_MAX) {
        return status_error(fn, NK_PACK_ARG_ERROR);
    }
    const Py_ssize_t n_w = (Py_ssize_t)p.k_h * p.k_w * (dw ? 1 : p.in_c) * p.out_c, oc = p.out_c;
    Py_buffer w = {0}, bias = {0}, mult = {0}, shift = {0};
    if (get_array(w_obj, &w, 1, n_w, "w") < 0)
        return NULL;
    PyObject *w_out = NULL, *c_out = NULL, *result = NULL;
    if ((bias_obj != Py_None && get_array(bias_obj, &bias, 4, oc, "bias") < 0) ||
        (!dw && get_array(mult_obj, &mult, 4, oc, "mult") < 0) ||
        get_array(shift_obj, &shift, 4, oc, "shift") < 0) {
        goto done;
    }
    w_out = PyBytes_FromStringAndSize(NULL, n_w);
    c_out = PyBytes_FromStringAndSize(NULL, oc * (dw ? 1 : NK_RQ_WORDS) * 4);
    if (!w_out || !c_out)
        goto done;
    const int32_t *b = bias.buf ? (const int32_t *)bias.buf : NULL;
    int8_t *wp = (int8_t *)PyBytes_AS_STRING(w_out);
    int32_t *cp = (int32_t *)PyBytes_AS_STRING(c_out);
    const nk_pack_status_t st =
        dw ? nk_dwconv2d_fast_pack(&p, (const int8_t *)w.buf, b, (const int32_t *)shift.buf, wp, cp)
           : nk_conv2d_fast_pack(&p, (const int8_t *)w.buf, b, (const int32_t *)mult.buf,
                                 (const int32_t *)shift.buf, wp, cp);
    if (st == NK_PACK_OK) {
        result = PyTuple_Pack(2, w_out, c_out);
    } else if (st == NK_PACK_UNBOUNDED) {
        Py_INCREF(Py_None);
        result = Py_None;
    } else {
        status_error(fn, st);
    }
done:
    Py_XDECREF(w_out);
    Py_XDECREF(c_out);
    PyBuffer_Release(&w);
    PyBuffer_Release(&bias);
    PyBuffer_Release(&mult);
    PyBuffer_Release(&shift);
    return result;
}

static PyObject *k_conv_pack(PyObject *self, PyObject *args) {
    (void)self;
    return pack(args, 0);
}

static PyObject *k_dw_pack(PyObject *self, PyObject *args) {
    (void)self;
    return pack(args, 1);
}

PyMethodDef nk_kernels_methods[] = {
    {"conv2d_fast_scratch_bytes", k_conv_scratch, METH_O, "nk_conv2d_fast_scratch_bytes(params dict) -> int"},
    {"dwconv2d_fast_scratch_bytes", k_dw_scratch, METH_O,
     "nk_dwconv2d_fast_scratch_bytes(params dict) -> int"},
    {"conv_params_fields", k_conv_fields, METH_NOARGS, "nk_conv_params_t's field names, in order"},
    {"fast_fold_bias", k_fold_bias, METH_VARARGS,
     "nk_fast_fold_bias(w int8, rows, k, row_step, k_step, bias int32 | None, in_offset) -> bytes "
     "int64[rows]"},
    {"fast_check_bounded", k_check_bounded, METH_VARARGS,
     "nk_fast_check_bounded(w int8, rows, k, row_step, k_step, bias_f int64, shift int32) -> bool"},
    {"gemm_order", k_gemm_order, METH_VARARGS, "nk_gemm_order(out_c, k) -> bytes int32[out_c k]"},
    {"dw_fast_order", k_dw_fast_order, METH_VARARGS, "nk_dw_fast_order(taps, channels) -> bytes int32"},
    {"conv_rq_fill", k_rq_fill, METH_VARARGS,
     "nk_conv_rq_fill(bias_f int32, mult int32, shift int32, out_offset) -> bytes int32[NK_RQ_WORDS n]"},
    {"conv2d_fast_pack", k_conv_pack, METH_VARARGS,
     "nk_conv2d_fast_pack(params, w, bias | None, mult, shift) -> (w_packed, rq) bytes, or None "
     "(unbounded)"},
    {"dwconv2d_fast_pack", k_dw_pack, METH_VARARGS,
     "nk_dwconv2d_fast_pack(params, w, bias | None, shift) -> (w_packed, bias_f) bytes, or None "
     "(unbounded)"},
    {NULL, NULL, 0, NULL},
};

/* The kernels' constants the compiler needs as numbers. */
int nk_kernels_add_constants(PyObject *m) {
    return PyModule_AddIntConstant(m, "NK_RQ_WORDS", NK_RQ_WORDS) < 0 ||
                   PyModule_AddIntConstant(m, "NK_CONV_PATCH_MAX", NK_CONV_PATCH_MAX) < 0 ||
                   PyModule_AddIntConstant(m, "NK_GEMM_COLS", NK_GEMM_COLS) < 0 ||
                   PyModule_AddIntConstant(m, "NK_DW_MAX_TAPS", NK_DW_MAX_TAPS) < 0 ||
                   PyModule_AddIntConstant(m, "NK_DW_MAX_CH", NK_DW_MAX_CH) < 0 ||
                   PyModule_AddIntConstant(m, "NK_DW3_PITCH", NK_DW3_PITCH) < 0
               ? -1
               : 0;
}
