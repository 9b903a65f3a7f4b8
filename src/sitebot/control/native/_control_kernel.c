/*
 * _control_kernel.c -- the one CPython binding of the control kernel: the extension
 * sitebot.control._control_kernel with the types ControlKernel and RtLoop.
 *
 * Contract: docs/control.md.  Every array argument goes through the buffer protocol and is
 * checked (float64, shape, C-contiguous); a wrong one raises TypeError or ValueError naming
 * the argument.  ``step`` keeps the buffers of the arrays it was last given (the export
 * pins their memory), so a loop that passes the same arrays every tick does not pay for
 * re-acquiring them.  The RtLoop thread never touches a Python object; RtLoop's setpoint
 * calls go to the C core of its kernel directly (the same functions as ControlKernel's).
 *
 * The enums and the output layout have one source, control_kernel.h: at import the module
 * builds the IntEnums Status, Reject and Interface from its X-macro lists (the methods
 * return their members), and exports STOP_CATEGORY, output_layout(n), MAX_JOINTS,
 * MAX_POINTS and SPEED_SLACK; sitebot.control.types takes them from here.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "control_kernel.h"
#include "rt_loop.h"

/* ======================================================================================
 * buffers
 * ====================================================================================== */

static int is_f64_format(const char *fmt)
{
    if (fmt == NULL)
        return 0;   /* unsigned bytes */
    if (fmt[0] == '@' || fmt[0] == '=')
        ++fmt;
#if PY_LITTLE_ENDIAN
    else if (fmt[0] == '<')
        ++fmt;
#else
    else if (fmt[0] == '>' || fmt[0] == '!')
        ++fmt;
#endif
    return fmt[0] == 'd' && fmt[1] == '\0';
}

/*
 * Acquire obj's buffer as float64, C-contiguous, with ndim dimensions; shape[d] >= 0 is
 * required exactly (a mismatch: ValueError, or *size_ok = 0 when size_ok is given).  0 on
 * success (view held), -1 with an exception set (view not held).
 */
static int get_f64(PyObject *obj, const char *name, int ndim, const Py_ssize_t *shape,
                   int writable, Py_buffer *view, int *size_ok)
{
    int d;
    if (size_ok)
        *size_ok = 1;
    if (PyObject_GetBuffer(obj, view, PyBUF_STRIDES | PyBUF_FORMAT |
                                          (writable ? PyBUF_WRITABLE : 0)) != 0) {
        PyErr_Clear();
        if (writable && PyObject_CheckBuffer(obj))
            PyErr_Format(PyExc_ValueError,
                         "argument '%s' must be a writable float64 array", name);
        else
            PyErr_Format(PyExc_TypeError,
                         "argument '%s' must be a float64 numpy array (buffer), got %.100s",
                         name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (!is_f64_format(view->format) || view->itemsize != (Py_ssize_t)sizeof(double)) {
        PyErr_Format(PyExc_TypeError, "argument '%s' must have dtype float64, got format '%s'",
                     name, view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    if (!PyBuffer_IsContiguous(view, 'C')) {
        PyErr_Format(PyExc_ValueError, "argument '%s' must be C-contiguous "
                     "(use numpy.ascontiguousarray)", name);
        PyBuffer_Release(view);
        return -1;
    }
    if (view->ndim != ndim) {
        if (size_ok) {
            *size_ok = 0;
            return 0;
        }
        PyErr_Format(PyExc_ValueError, "argument '%s' must have %d dimension(s), got %d",
                     name, ndim, view->ndim);
        PyBuffer_Release(view);
        return -1;
    }
    for (d = 0; d < ndim; ++d) {
        if (shape[d] >= 0 && view->shape[d] != shape[d]) {
            if (size_ok) {
                *size_ok = 0;
                return 0;
            }
            if (ndim == 1)
                PyErr_Format(PyExc_ValueError, "argument '%s' must have shape (%zd,), got (%zd,)",
                             name, shape[0], view->shape[0]);
            else
                PyErr_Format(PyExc_ValueError, "argument '%s' has the wrong shape (dimension %d "
                             "is %zd, expected %zd)", name, d, view->shape[d], shape[d]);
            PyBuffer_Release(view);
            return -1;
        }
    }
    return 0;
}

/* A pinned buffer: the last array given for one argument of step(). */
typedef struct {
    PyObject *obj;   /* strong reference, NULL when empty */
    Py_buffer view;
} pinned;

static void pinned_clear(pinned *p)
{
    if (p->obj) {
        PyBuffer_Release(&p->view);
        Py_CLEAR(p->obj);
    }
}

/* The data of obj (checked as float64 (len,), C-contiguous); NULL with an exception. */
static double *pinned_get(pinned *p, PyObject *obj, const char *name, Py_ssize_t len,
                          int writable)
{
    Py_buffer view;
    if (obj == p->obj)
        return (double *)p->view.buf;
    if (get_f64(obj, name, 1, &len, writable, &view, NULL) != 0)
        return NULL;
    pinned_clear(p);
    p->view = view;
    Py_INCREF(obj);
    p->obj = obj;
    return (double *)view.buf;
}

static int as_double(PyObject *obj, const char *name, double *out)
{
    double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "argument '%s' must be a number, got %.100s", name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = v;
    return 0;
}

/* ======================================================================================
 * the enums (from the X-macro lists of control_kernel.h)
 * ====================================================================================== */

typedef struct {
    const char *name;
    int value;
} name_value;

#define CK_TABLE_ITEM(c_name, py_name, value) {#py_name, c_name},
static const name_value status_table[] = {CK_STATUS_LIST(CK_TABLE_ITEM)};
static const name_value reject_table[] = {CK_REJECT_LIST(CK_TABLE_ITEM)};
static const name_value stop_category_table[] = {CK_STOP_CATEGORY_LIST(CK_TABLE_ITEM)};
static const name_value interface_table[] = {CK_INTERFACE_LIST(CK_TABLE_ITEM)};
static const name_value heartbeat_table[] = {CK_HEARTBEAT_LIST(CK_TABLE_ITEM)};
static const name_value latch_table[] = {CK_LATCH_LIST(CK_TABLE_ITEM)};
#undef CK_TABLE_ITEM
#define TABLE_SIZE(t) ((int)(sizeof(t) / sizeof((t)[0])))

/* Members of Status and Reject indexed by value (values 0..count-1), set at import. */
static PyObject *status_members;
static PyObject *reject_members;
static PyObject *heartbeat_members;

/* enum.IntEnum(name, [(member, value), ...]) as if defined in sitebot.control.types. */
static PyObject *make_int_enum(PyObject *int_enum, const char *name, const name_value *table,
                               int count, const char *doc)
{
    PyObject *members, *args = NULL, *kwargs = NULL, *cls = NULL, *docstr;
    int i;
    members = PyList_New(count);
    if (!members)
        return NULL;
    for (i = 0; i < count; ++i) {
        PyObject *item = Py_BuildValue("(si)", table[i].name, table[i].value);
        if (!item)
            goto done;
        PyList_SET_ITEM(members, i, item);
    }
    args = Py_BuildValue("(sO)", name, members);
    kwargs = Py_BuildValue("{s:s,s:s}", "module", "sitebot.control.types", "qualname", name);
    if (!args || !kwargs)
        goto done;
    cls = PyObject_Call(int_enum, args, kwargs);
    if (cls) {
        docstr = PyUnicode_FromString(doc);
        if (!docstr || PyObject_SetAttrString(cls, "__doc__", docstr) < 0)
            Py_CLEAR(cls);
        Py_XDECREF(docstr);
    }
done:
    Py_DECREF(members);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return cls;
}

/* (cls(0), ..., cls(count - 1)); the table's values must be 0..count-1 in order. */
static PyObject *members_by_value(PyObject *cls, const name_value *table, int count)
{
    PyObject *tuple = PyTuple_New(count);
    int i;
    if (!tuple)
        return NULL;
    for (i = 0; i < count; ++i) {
        PyObject *v;
        if (table[i].value != i) {
            PyErr_Format(PyExc_SystemError, "control_kernel.h: %s has value %d at index %d",
                         table[i].name, table[i].value, i);
            Py_DECREF(tuple);
            return NULL;
        }
        v = PyObject_CallFunction(cls, "i", i);
        if (!v) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, i, v);
    }
    return tuple;
}

static PyObject *status_obj(int status)
{
    PyObject *v = PyTuple_GET_ITEM(status_members, status);
    Py_INCREF(v);
    return v;
}

static PyObject *heartbeat_obj(int hb)
{
    PyObject *v = PyTuple_GET_ITEM(heartbeat_members, hb);
    Py_INCREF(v);
    return v;
}

static PyObject *reject_obj(int reject)
{
    PyObject *v = PyTuple_GET_ITEM(reject_members, reject);
    Py_INCREF(v);
    return v;
}

/* ======================================================================================
 * ControlKernel
 * ====================================================================================== */

typedef struct {
    PyObject_HEAD
    int ready;
    ck_kernel k;
    double *mem;
    pthread_mutex_t lock;       /* taken around every call into the core */
    int lock_ready;
    int driven;                 /* a running RtLoop steps this kernel */
    PyObject *config;
    PyObject *buf_name;         /* interned "_buf" */
    pinned pin[5];              /* q, qd, wheel_q, wheel_qd, out._buf */
} KernelObject;

static PyTypeObject KernelType;

static int ready_or_raise(KernelObject *self)
{
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "ControlKernel was not initialised "
                        "(ControlKernel(config))");
        return 0;
    }
    return 1;
}

static int cfg_number(PyObject *config, const char *field, double *out)
{
    PyObject *v = PyObject_GetAttrString(config, field);
    int rc;
    if (!v) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "argument 'config' must be a KernelConfig "
                     "(no field '%s')", field);
        return -1;
    }
    rc = 0;
    *out = PyFloat_AsDouble(v);
    if (*out == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "KernelConfig.%s must be a number", field);
        rc = -1;
    }
    Py_DECREF(v);
    return rc;
}

static int cfg_int(PyObject *config, const char *field, long *out)
{
    PyObject *v = PyObject_GetAttrString(config, field);
    int rc = 0;
    if (!v) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "argument 'config' must be a KernelConfig "
                     "(no field '%s')", field);
        return -1;
    }
    *out = PyLong_AsLong(v);
    if (*out == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "KernelConfig.%s must be an integer", field);
        rc = -1;
    }
    Py_DECREF(v);
    return rc;
}

static int cfg_vector(PyObject *config, const char *field, int n, double *out)
{
    PyObject *v = PyObject_GetAttrString(config, field), *seq;
    Py_ssize_t i;
    if (!v) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "argument 'config' must be a KernelConfig "
                     "(no field '%s')", field);
        return -1;
    }
    seq = PySequence_Fast(v, "");
    Py_DECREF(v);
    if (!seq || PySequence_Fast_GET_SIZE(seq) != n) {
        Py_XDECREF(seq);
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "KernelConfig.%s must be a sequence of %d numbers",
                     field, n);
        return -1;
    }
    for (i = 0; i < n; ++i) {
        out[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        if (out[i] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(seq);
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "KernelConfig.%s[%zd] must be a number", field, i);
            return -1;
        }
    }
    Py_DECREF(seq);
    return 0;
}

static int read_config(PyObject *config, ck_config *c)
{
    long n, iface, mp;
    const char *bad = NULL;
    memset(c, 0, sizeof *c);
    if (cfg_int(config, "n_joints", &n) != 0)
        return -1;
    if (n < 1 || n > CK_MAX_JOINTS) {
        PyErr_Format(PyExc_ValueError, "KernelConfig.n_joints is %ld; the C kernel takes "
                     "1 to %d joints", n, CK_MAX_JOINTS);
        return -1;
    }
    c->n_joints = (int)n;
    if (cfg_vector(config, "pos_min", c->n_joints, c->pos_min) ||
        cfg_vector(config, "pos_max", c->n_joints, c->pos_max) ||
        cfg_vector(config, "vel_max", c->n_joints, c->vel_max) ||
        cfg_vector(config, "acc_max", c->n_joints, c->acc_max) ||
        cfg_vector(config, "effort_max", c->n_joints, c->effort_max) ||
        cfg_vector(config, "kp", c->n_joints, c->kp) ||
        cfg_vector(config, "kd", c->n_joints, c->kd) ||
        cfg_int(config, "interface", &iface) ||
        cfg_number(config, "wheel_radius_m", &c->wheel_radius_m) ||
        cfg_number(config, "wheel_separation_m", &c->wheel_separation_m) ||
        cfg_number(config, "wheel_vel_max", &c->wheel_vel_max) ||
        cfg_number(config, "base_lin_acc_max", &c->base_lin_acc_max) ||
        cfg_number(config, "base_ang_acc_max", &c->base_ang_acc_max) ||
        cfg_number(config, "base_lin_vel_max", &c->base_lin_vel_max) ||
        cfg_number(config, "base_ang_vel_max", &c->base_ang_vel_max) ||
        cfg_number(config, "cmd_timeout_s", &c->cmd_timeout_s) ||
        cfg_number(config, "heartbeat_timeout_s", &c->heartbeat_timeout_s) ||
        cfg_int(config, "max_points", &mp))
        return -1;
    c->interface = (iface >= 0 && iface <= 2) ? (int)iface : -1;
    c->max_points = (mp >= 1 && mp <= CK_MAX_POINTS_LIMIT) ? (int)mp : -1;
    {
        /* limit_margin is optional (an addition to the contract) */
        PyObject *v = PyObject_GetAttrString(config, "limit_margin");
        if (v) {
            Py_DECREF(v);
            if (cfg_number(config, "limit_margin", &c->limit_margin) != 0)
                return -1;
        } else {
            PyErr_Clear();
            c->limit_margin = 0.0;
        }
    }
    if (ck_config_check(c, &bad) != 0) {
        PyErr_Format(PyExc_ValueError, "KernelConfig.%s is out of range", bad);
        return -1;
    }
    return 0;
}

static void kernel_release(KernelObject *self)
{
    int i;
    for (i = 0; i < 5; ++i)
        pinned_clear(&self->pin[i]);
    if (self->mem) {
        PyMem_Free(self->mem);
        self->mem = NULL;
    }
    self->ready = 0;
}

static PyObject *Kernel_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    KernelObject *self = (KernelObject *)type->tp_alloc(type, 0);
    pthread_mutexattr_t attr;
    (void)args;
    (void)kwds;
    if (!self)
        return NULL;
    if (pthread_mutexattr_init(&attr) == 0) {
        pthread_mutexattr_setprotocol(&attr, PTHREAD_PRIO_INHERIT);
        self->lock_ready = pthread_mutex_init(&self->lock, &attr) == 0;
        pthread_mutexattr_destroy(&attr);
    }
    if (!self->lock_ready) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_RuntimeError, "could not create the kernel mutex");
        return NULL;
    }
    self->buf_name = PyUnicode_InternFromString("_buf");
    if (!self->buf_name) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int Kernel_init(KernelObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"config", NULL};
    PyObject *config;
    ck_config cfg;
    size_t nd;
    double *mem;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:ControlKernel", kwlist, &config))
        return -1;
    if (self->driven) {
        PyErr_SetString(PyExc_RuntimeError, "cannot re-initialise a kernel that a running "
                        "RtLoop steps");
        return -1;
    }
    if (read_config(config, &cfg) != 0)
        return -1;
    nd = ck_memory_doubles(&cfg);
    mem = (double *)PyMem_Calloc(nd, sizeof(double));
    if (!mem) {
        PyErr_NoMemory();
        return -1;
    }
    pthread_mutex_lock(&self->lock);
    kernel_release(self);
    self->mem = mem;
    if (ck_init(&self->k, &cfg, mem, nd) != 0) {
        pthread_mutex_unlock(&self->lock);
        kernel_release(self);
        PyErr_SetString(PyExc_ValueError, "invalid KernelConfig");
        return -1;
    }
    self->ready = 1;
    pthread_mutex_unlock(&self->lock);
    Py_INCREF(config);
    Py_XSETREF(self->config, config);
    return 0;
}

static int Kernel_traverse(KernelObject *self, visitproc visit, void *arg)
{
    int i;
    Py_VISIT(self->config);
    for (i = 0; i < 5; ++i)
        Py_VISIT(self->pin[i].obj);
    return 0;
}

static int Kernel_clear(KernelObject *self)
{
    int i;
    Py_CLEAR(self->config);
    for (i = 0; i < 5; ++i)
        pinned_clear(&self->pin[i]);
    return 0;
}

static void Kernel_dealloc(KernelObject *self)
{
    PyObject_GC_UnTrack(self);
    Kernel_clear(self);
    kernel_release(self);
    Py_CLEAR(self->buf_name);
    if (self->lock_ready)
        pthread_mutex_destroy(&self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* step(t_s, dt_s, q, qd, wheel_q, wheel_qd, out) -> Status */
static PyObject *Kernel_step(KernelObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *names[4] = {"q", "qd", "wheel_q", "wheel_qd"};
    double t, dt, *vec[4], *out;
    PyObject *buf;
    int i, status;
    Py_ssize_t n;
    if (!ready_or_raise(self))
        return NULL;
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError, "step(t_s, dt_s, q, qd, wheel_q, wheel_qd, out) takes 7 "
                     "arguments, got %zd", nargs);
        return NULL;
    }
    if (self->driven) {
        PyErr_SetString(PyExc_RuntimeError, "this kernel is stepped by a running RtLoop; "
                        "use RtLoop.write_state/read_output");
        return NULL;
    }
    if (as_double(args[0], "t_s", &t) || as_double(args[1], "dt_s", &dt))
        return NULL;
    n = self->k.n;
    for (i = 0; i < 4; ++i) {
        vec[i] = pinned_get(&self->pin[i], args[2 + i], names[i], i < 2 ? n : 2, 0);
        if (!vec[i])
            return NULL;
    }
    buf = PyObject_GetAttr(args[6], self->buf_name);
    if (!buf) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "argument 'out' must be a KernelOutput, got %.100s",
                     Py_TYPE(args[6])->tp_name);
        return NULL;
    }
    out = pinned_get(&self->pin[4], buf, "out", (Py_ssize_t)ck_output_size(n), 1);
    Py_DECREF(buf);
    if (!out) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "argument 'out' must be a writable KernelOutput "
                         "for %zd joints", n);
        }
        return NULL;
    }
    pthread_mutex_lock(&self->lock);
    status = ck_step(&self->k, t, dt, vec[0], vec[1], vec[2], vec[3], out);
    pthread_mutex_unlock(&self->lock);
    return status_obj(status);
}

/* set_trajectory(times_s, positions, velocities=None, accelerations=None, start_time_s=None) */
static PyObject *Kernel_set_trajectory(KernelObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"times_s", "positions", "velocities", "accelerations",
                             "start_time_s", NULL};
    PyObject *ot, *op, *ov = Py_None, *oa = Py_None, *os = Py_None;
    Py_buffer bt, bp, bv, ba;
    int have_t = 0, have_p = 0, have_v = 0, have_a = 0, reject = CK_ACCEPTED;
    int ok_t = 1, ok_p = 1, ok_v = 1, ok_a = 1;
    int has_start = 0;
    double start = 0.0;
    Py_ssize_t count, shape2[2], any1 = -1;
    if (!ready_or_raise(self))
        return NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OOO:set_trajectory", kwlist, &ot, &op,
                                     &ov, &oa, &os))
        return NULL;
    if (os != Py_None) {
        if (as_double(os, "start_time_s", &start))
            return NULL;
        has_start = 1;
    }
    /* acquire everything first: wrong types/contiguity raise before any result; a wrong
     * number of dimensions or a wrong shape is the WRONG_SIZE reject */
    shape2[0] = -1;
    shape2[1] = -1;
    if (get_f64(ot, "times_s", 1, &any1, 0, &bt, &ok_t) != 0)
        goto fail;
    have_t = 1;
    if (get_f64(op, "positions", 2, shape2, 0, &bp, &ok_p) != 0)
        goto fail;
    have_p = 1;
    if (ov != Py_None) {
        if (get_f64(ov, "velocities", 2, shape2, 0, &bv, &ok_v) != 0)
            goto fail;
        have_v = 1;
    }
    if (oa != Py_None) {
        if (get_f64(oa, "accelerations", 2, shape2, 0, &ba, &ok_a) != 0)
            goto fail;
        have_a = 1;
    }
    if (!ok_t) {
        reject = CK_WRONG_SIZE;
    } else {
        const Py_ssize_t n = self->k.n;
        count = bt.shape[0];
        if (count == 0)
            reject = CK_EMPTY;
        else if (count > self->k.cfg.max_points)
            reject = CK_TOO_MANY_POINTS;
        else if (!ok_p || !ok_v || !ok_a || bp.shape[0] != count || bp.shape[1] != n ||
                 (have_v && (bv.shape[0] != count || bv.shape[1] != n)) ||
                 (have_a && (ba.shape[0] != count || ba.shape[1] != n)))
            reject = CK_WRONG_SIZE;
        else {
            pthread_mutex_lock(&self->lock);
            reject = ck_set_trajectory(&self->k, (int)count, (const double *)bt.buf,
                                       (const double *)bp.buf,
                                       have_v ? (const double *)bv.buf : NULL,
                                       have_a ? (const double *)ba.buf : NULL,
                                       has_start, start);
            pthread_mutex_unlock(&self->lock);
        }
    }
    PyBuffer_Release(&bt);
    if (have_p)
        PyBuffer_Release(&bp);
    if (have_v)
        PyBuffer_Release(&bv);
    if (have_a)
        PyBuffer_Release(&ba);
    return reject_obj(reject);
fail:
    if (have_t)
        PyBuffer_Release(&bt);
    if (have_p)
        PyBuffer_Release(&bp);
    if (have_v)
        PyBuffer_Release(&bv);
    if (have_a)
        PyBuffer_Release(&ba);
    return NULL;
}

static PyObject *Kernel_set_base_command(KernelObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"v_mps", "w_radps", "stamp_s", NULL};
    PyObject *ov, *ow, *os;
    double v, w, s;
    int r;
    if (!ready_or_raise(self))
        return NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO:set_base_command", kwlist, &ov, &ow, &os))
        return NULL;
    if (as_double(ov, "v_mps", &v) || as_double(ow, "w_radps", &w) ||
        as_double(os, "stamp_s", &s))
        return NULL;
    pthread_mutex_lock(&self->lock);
    r = ck_set_base_command(&self->k, v, w, s);
    pthread_mutex_unlock(&self->lock);
    return reject_obj(r);
}

/* an unsigned 64-bit integer argument (a Python int in [0, 2**64)) */
static int as_u64(PyObject *obj, const char *name, uint64_t *out)
{
    unsigned long long v;
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "argument '%s' must be an int, got %.100s", name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    v = PyLong_AsUnsignedLongLong(obj);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "argument '%s' must be in [0, 2**64), got %R", name,
                     obj);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

static PyObject *Kernel_set_supervisor(KernelObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"source", "sequence", "releases", "stamp_s", "speed_scale",
                             "stop_category", NULL};
    PyObject *osrc, *oseq, *orel, *ost, *osc, *oc, *ci;
    uint64_t src, seq, rel;
    double stamp, scale;
    long cat;
    int r;
    if (!ready_or_raise(self))
        return NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO:set_supervisor", kwlist, &osrc,
                                     &oseq, &orel, &ost, &osc, &oc))
        return NULL;
    if (as_u64(osrc, "source", &src) || as_u64(oseq, "sequence", &seq) ||
        as_u64(orel, "releases", &rel))
        return NULL;
    ci = PyNumber_Long(oc);
    if (!ci) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "argument 'stop_category' must be one of 0, 1, 2, 255 "
                     "(StopCategory), got %.100s", Py_TYPE(oc)->tp_name);
        return NULL;
    }
    cat = PyLong_AsLong(ci);
    Py_DECREF(ci);
    if (cat == -1 && PyErr_Occurred())
        PyErr_Clear();
    if (cat != 0 && cat != 1 && cat != 2 && cat != 255) {
        PyErr_Format(PyExc_ValueError, "argument 'stop_category' must be one of 0, 1, 2, 255 "
                     "(StopCategory), got %ld", cat);
        return NULL;
    }
    if (as_double(ost, "stamp_s", &stamp) || as_double(osc, "speed_scale", &scale))
        return NULL;
    pthread_mutex_lock(&self->lock);
    r = ck_set_supervisor(&self->k, src, seq, rel, stamp, scale, (int)cat);
    pthread_mutex_unlock(&self->lock);
    return heartbeat_obj(r);
}

static PyObject *Kernel_pin_supervisor(KernelObject *self, PyObject *arg)
{
    uint64_t src;
    int r;
    if (!ready_or_raise(self))
        return NULL;
    if (as_u64(arg, "source", &src))
        return NULL;
    pthread_mutex_lock(&self->lock);
    r = ck_pin_supervisor(&self->k, src);
    pthread_mutex_unlock(&self->lock);
    return PyBool_FromLong(r);
}

static PyObject *Kernel_get_latch(KernelObject *self, void *closure)
{
    unsigned latch;
    (void)closure;
    if (!ready_or_raise(self))
        return NULL;
    pthread_mutex_lock(&self->lock);
    latch = self->k.latch;
    pthread_mutex_unlock(&self->lock);
    return PyLong_FromUnsignedLong(latch);
}

static PyObject *Kernel_reset(KernelObject *self, PyObject *arg)
{
    Py_buffer view;
    Py_ssize_t n;
    int r;
    if (!ready_or_raise(self))
        return NULL;
    n = self->k.n;
    if (get_f64(arg, "positions", 1, &n, 0, &view, NULL) != 0)
        return NULL;
    pthread_mutex_lock(&self->lock);
    r = ck_reset(&self->k, (const double *)view.buf);
    pthread_mutex_unlock(&self->lock);
    PyBuffer_Release(&view);
    if (r != 0) {
        PyErr_SetString(PyExc_ValueError, "argument 'positions' must be finite");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* sample(tau_s, q, qd, qdd) -> bool */
static PyObject *Kernel_sample(KernelObject *self, PyObject *args)
{
    static const char *names[3] = {"q", "qd", "qdd"};
    PyObject *otau, *o[3];
    Py_buffer view[3];
    double tau;
    Py_ssize_t n;
    int i, r;
    if (!ready_or_raise(self))
        return NULL;
    if (!PyArg_ParseTuple(args, "OOOO:sample", &otau, &o[0], &o[1], &o[2]))
        return NULL;
    if (as_double(otau, "tau_s", &tau))
        return NULL;
    n = self->k.n;
    for (i = 0; i < 3; ++i) {
        if (get_f64(o[i], names[i], 1, &n, 1, &view[i], NULL) != 0) {
            while (--i >= 0)
                PyBuffer_Release(&view[i]);
            return NULL;
        }
    }
    pthread_mutex_lock(&self->lock);
    r = ck_sample(&self->k, tau, (double *)view[0].buf, (double *)view[1].buf,
                  (double *)view[2].buf);
    pthread_mutex_unlock(&self->lock);
    for (i = 0; i < 3; ++i)
        PyBuffer_Release(&view[i]);
    return PyBool_FromLong(r);
}

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* _bench_step(iterations, t0_s, dt_s, q, qd, wheel_q, wheel_qd, out) -> seconds in ck_step */
static PyObject *Kernel_bench_step(KernelObject *self, PyObject *args)
{
    PyObject *o[5];
    long long iters, i, t_start, t_end;
    double t0, dt, *vec[4], *out;
    Py_buffer views[5];
    static const char *names[5] = {"q", "qd", "wheel_q", "wheel_qd", "out"};
    Py_ssize_t n, lens[5];
    int j;
    if (!ready_or_raise(self))
        return NULL;
    if (!PyArg_ParseTuple(args, "LddOOOOO:_bench_step", &iters, &t0, &dt, &o[0], &o[1], &o[2],
                          &o[3], &o[4]))
        return NULL;
    if (self->driven) {
        PyErr_SetString(PyExc_RuntimeError, "this kernel is stepped by a running RtLoop");
        return NULL;
    }
    n = self->k.n;
    lens[0] = lens[1] = n;
    lens[2] = lens[3] = 2;
    lens[4] = (Py_ssize_t)ck_output_size(n);
    for (j = 0; j < 5; ++j) {
        PyObject *src = o[j];
        if (j == 4) {
            src = PyObject_GetAttr(o[4], self->buf_name);
            if (!src) {
                while (--j >= 0)
                    PyBuffer_Release(&views[j]);
                return NULL;
            }
        }
        if (get_f64(src, names[j], 1, &lens[j], j == 4, &views[j], NULL) != 0) {
            if (j == 4)
                Py_DECREF(src);
            while (--j >= 0)
                PyBuffer_Release(&views[j]);
            return NULL;
        }
        if (j == 4)
            Py_DECREF(src);
    }
    for (j = 0; j < 4; ++j)
        vec[j] = (double *)views[j].buf;
    out = (double *)views[4].buf;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->lock);
    t_start = mono_ns();
    for (i = 0; i < iters; ++i)
        ck_step(&self->k, t0 + (double)i * dt, dt, vec[0], vec[1], vec[2], vec[3], out);
    t_end = mono_ns();
    pthread_mutex_unlock(&self->lock);
    Py_END_ALLOW_THREADS
    for (j = 0; j < 5; ++j)
        PyBuffer_Release(&views[j]);
    return PyFloat_FromDouble((double)(t_end - t_start) * 1e-9);
}

static PyObject *Kernel_get_config(KernelObject *self, void *closure)
{
    (void)closure;
    if (!ready_or_raise(self))
        return NULL;
    Py_INCREF(self->config);
    return self->config;
}

static PyObject *Kernel_get_n_joints(KernelObject *self, void *closure)
{
    (void)closure;
    if (!ready_or_raise(self))
        return NULL;
    return PyLong_FromLong(self->k.n);
}

static PyMethodDef Kernel_methods[] = {
    {"step", (PyCFunction)(void (*)(void))Kernel_step, METH_FASTCALL,
     "step(t_s, dt_s, q, qd, wheel_q, wheel_qd, out) -> Status: one control tick."},
    {"set_trajectory", (PyCFunction)(void (*)(void))Kernel_set_trajectory,
     METH_VARARGS | METH_KEYWORDS,
     "set_trajectory(times_s, positions, velocities=None, accelerations=None, "
     "start_time_s=None) -> Reject"},
    {"set_base_command", (PyCFunction)(void (*)(void))Kernel_set_base_command,
     METH_VARARGS | METH_KEYWORDS, "set_base_command(v_mps, w_radps, stamp_s) -> Reject"},
    {"set_supervisor", (PyCFunction)(void (*)(void))Kernel_set_supervisor,
     METH_VARARGS | METH_KEYWORDS,
     "set_supervisor(source, sequence, releases, stamp_s, speed_scale, stop_category) -> "
     "Heartbeat"},
    {"pin_supervisor", (PyCFunction)Kernel_pin_supervisor, METH_O,
     "pin_supervisor(source) -> bool: take source as the supervisor; refused while another "
     "pinned source's heartbeat is fresh."},
    {"reset", (PyCFunction)Kernel_reset, METH_O,
     "reset(positions): hold these positions, clear trajectory, base and odometry."},
    {"sample", (PyCFunction)Kernel_sample, METH_VARARGS,
     "sample(tau_s, q, qd, qdd) -> bool: the active trajectory at trajectory time tau_s."},
    {"_bench_step", (PyCFunction)Kernel_bench_step, METH_VARARGS,
     "_bench_step(iterations, t0_s, dt_s, q, qd, wheel_q, wheel_qd, out) -> seconds spent "
     "in the C core (no Python per step)."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Kernel_getset[] = {
    {"config", (getter)Kernel_get_config, NULL, "the KernelConfig", NULL},
    {"n_joints", (getter)Kernel_get_n_joints, NULL, "number of arm joints", NULL},
    {"latch", (getter)Kernel_get_latch, NULL,
     "the stop latch's causes (Latch bits; 0: open)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sitebot.control._control_kernel.ControlKernel",
    .tp_basicsize = sizeof(KernelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "ControlKernel(config): the C control kernel (contract: docs/control.md).",
    .tp_new = Kernel_new,
    .tp_init = (initproc)Kernel_init,
    .tp_dealloc = (destructor)Kernel_dealloc,
    .tp_traverse = (traverseproc)Kernel_traverse,
    .tp_clear = (inquiry)Kernel_clear,
    .tp_methods = Kernel_methods,
    .tp_getset = Kernel_getset,
};

/* ======================================================================================
 * RtLoop
 * ====================================================================================== */

typedef struct {
    PyObject_HEAD
    KernelObject *kernel;
    rt_loop *loop;              /* malloc'd (large: the histogram) */
} RtLoopObject;

static PyTypeObject RtLoopType;

static int loop_ready(RtLoopObject *self)
{
    if (!self->loop || !self->kernel) {
        PyErr_SetString(PyExc_RuntimeError, "RtLoop was not initialised (RtLoop(kernel))");
        return 0;
    }
    return 1;
}

static void loop_shutdown(RtLoopObject *self)
{
    if (self->loop) {
        if (self->loop->running) {
            Py_BEGIN_ALLOW_THREADS
            rt_stop(self->loop);
            Py_END_ALLOW_THREADS
        }
        if (self->kernel)
            self->kernel->driven = 0;
        rt_destroy(self->loop);
        PyMem_RawFree(self->loop);
        self->loop = NULL;
    }
}

static int RtLoop_init(RtLoopObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"kernel", "rate_hz", NULL};
    PyObject *kernel;
    double rate = 1000.0;
    rt_loop *loop;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|d:RtLoop", kwlist, &kernel, &rate))
        return -1;
    if (!PyObject_TypeCheck(kernel, &KernelType)) {
        PyErr_Format(PyExc_TypeError, "argument 'kernel' must be the C ControlKernel "
                     "(sitebot.control.CControlKernel), got %.100s", Py_TYPE(kernel)->tp_name);
        return -1;
    }
    if (!((KernelObject *)kernel)->ready) {
        PyErr_SetString(PyExc_ValueError, "argument 'kernel' was not initialised");
        return -1;
    }
    if (!(isfinite(rate) && rate > 0.0 && rate <= 100000.0)) {
        PyErr_Format(PyExc_ValueError, "argument 'rate_hz' must be in (0, 100000], got %g", rate);
        return -1;
    }
    if (self->loop && self->loop->running) {
        PyErr_SetString(PyExc_RuntimeError, "cannot re-initialise a running RtLoop");
        return -1;
    }
    loop_shutdown(self);
    loop = (rt_loop *)PyMem_RawCalloc(1, sizeof(rt_loop));
    if (!loop) {
        PyErr_NoMemory();
        return -1;
    }
    if (rt_init(loop, &((KernelObject *)kernel)->k, &((KernelObject *)kernel)->lock, rate) != 0) {
        PyMem_RawFree(loop);
        PyErr_SetString(PyExc_RuntimeError, "could not initialise the RtLoop");
        return -1;
    }
    self->loop = loop;
    Py_INCREF(kernel);
    Py_XSETREF(self->kernel, (KernelObject *)kernel);
    return 0;
}

static int RtLoop_traverse(RtLoopObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->kernel);
    return 0;
}

static void RtLoop_dealloc(RtLoopObject *self)
{
    PyObject_GC_UnTrack(self);
    loop_shutdown(self);
    Py_CLEAR(self->kernel);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *RtLoop_start(RtLoopObject *self, PyObject *unused)
{
    int rc;
    (void)unused;
    if (!loop_ready(self))
        return NULL;
    if (self->loop->running) {
        PyErr_SetString(PyExc_RuntimeError, "RtLoop is already running");
        return NULL;
    }
    if (self->kernel->driven) {
        PyErr_SetString(PyExc_RuntimeError, "the kernel is already stepped by another RtLoop");
        return NULL;
    }
    self->kernel->driven = 1;
    rc = rt_start(self->loop);
    if (rc != 0) {
        self->kernel->driven = 0;
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *RtLoop_stop(RtLoopObject *self, PyObject *unused)
{
    (void)unused;
    if (!loop_ready(self))
        return NULL;
    if (self->loop->running) {
        Py_BEGIN_ALLOW_THREADS
        rt_stop(self->loop);
        Py_END_ALLOW_THREADS
    }
    self->kernel->driven = 0;
    Py_RETURN_NONE;
}

static PyObject *RtLoop_enter(RtLoopObject *self, PyObject *unused)
{
    PyObject *r = RtLoop_start(self, unused);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_INCREF(self);
    return (PyObject *)self;
}

static PyObject *RtLoop_exit(RtLoopObject *self, PyObject *args)
{
    PyObject *r;
    (void)args;
    r = RtLoop_stop(self, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

/* write_state(q, qd, wheel_q, wheel_qd) */
static PyObject *RtLoop_write_state(RtLoopObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"q", "qd", "wheel_q", "wheel_qd", NULL};
    static const char *names[4] = {"q", "qd", "wheel_q", "wheel_qd"};
    PyObject *o[4];
    Py_buffer v[4];
    Py_ssize_t n, lens[4];
    int i;
    if (!loop_ready(self))
        return NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO:write_state", kwlist, &o[0], &o[1],
                                     &o[2], &o[3]))
        return NULL;
    n = self->kernel->k.n;
    lens[0] = lens[1] = n;
    lens[2] = lens[3] = 2;
    for (i = 0; i < 4; ++i) {
        if (get_f64(o[i], names[i], 1, &lens[i], 0, &v[i], NULL) != 0) {
            while (--i >= 0)
                PyBuffer_Release(&v[i]);
            return NULL;
        }
    }
    rt_write_state(self->loop, (const double *)v[0].buf, (const double *)v[1].buf,
                   (const double *)v[2].buf, (const double *)v[3].buf);
    for (i = 0; i < 4; ++i)
        PyBuffer_Release(&v[i]);
    Py_RETURN_NONE;
}

/* read_output(out) -> int: the tick count the output comes from (0: none yet) */
static PyObject *RtLoop_read_output(RtLoopObject *self, PyObject *out)
{
    PyObject *buf;
    Py_buffer v;
    Py_ssize_t len;
    long long ticks;
    if (!loop_ready(self))
        return NULL;
    buf = PyObject_GetAttr(out, self->kernel->buf_name);
    if (!buf) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "argument 'out' must be a KernelOutput, got %.100s",
                     Py_TYPE(out)->tp_name);
        return NULL;
    }
    len = (Py_ssize_t)ck_output_size(self->kernel->k.n);
    if (get_f64(buf, "out", 1, &len, 1, &v, NULL) != 0) {
        Py_DECREF(buf);
        return NULL;
    }
    ticks = rt_read_output(self->loop, (double *)v.buf);
    PyBuffer_Release(&v);
    Py_DECREF(buf);
    return PyLong_FromLongLong(ticks);
}

/* The setpoint calls: the kernel's own (its C core, under its lock), no Python between. */
static PyObject *RtLoop_set_trajectory(RtLoopObject *self, PyObject *args, PyObject *kwds)
{
    if (!loop_ready(self))
        return NULL;
    return Kernel_set_trajectory(self->kernel, args, kwds);
}

static PyObject *RtLoop_set_base_command(RtLoopObject *self, PyObject *args, PyObject *kwds)
{
    if (!loop_ready(self))
        return NULL;
    return Kernel_set_base_command(self->kernel, args, kwds);
}

static PyObject *RtLoop_set_supervisor(RtLoopObject *self, PyObject *args, PyObject *kwds)
{
    if (!loop_ready(self))
        return NULL;
    return Kernel_set_supervisor(self->kernel, args, kwds);
}

static PyObject *RtLoop_pin_supervisor(RtLoopObject *self, PyObject *arg)
{
    if (!loop_ready(self))
        return NULL;
    return Kernel_pin_supervisor(self->kernel, arg);
}

static PyObject *RtLoop_stats(RtLoopObject *self, PyObject *unused)
{
    rt_stats st;
    (void)unused;
    if (!loop_ready(self))
        return NULL;
    rt_get_stats(self->loop, &st);
    return Py_BuildValue("{s:d,s:d,s:d,s:d,s:L,s:L}", "mean_period_s", st.mean_period_s,
                         "std_period_s", st.std_period_s, "p99_error_s", st.p99_error_s,
                         "max_error_s", st.max_error_s, "overruns", st.overruns, "ticks",
                         st.ticks);
}

static PyObject *RtLoop_now(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyFloat_FromDouble(rt_now_s());
}

static PyObject *RtLoop_get_running(RtLoopObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->loop && self->loop->running);
}

static PyObject *RtLoop_get_realtime(RtLoopObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->loop && self->loop->running && self->loop->realtime);
}

static PyObject *RtLoop_get_rate_hz(RtLoopObject *self, void *closure)
{
    (void)closure;
    if (!loop_ready(self))
        return NULL;
    return PyFloat_FromDouble(1.0 / self->loop->period_s);
}

static PyObject *RtLoop_get_kernel(RtLoopObject *self, void *closure)
{
    (void)closure;
    if (!loop_ready(self))
        return NULL;
    Py_INCREF(self->kernel);
    return (PyObject *)self->kernel;
}

static PyMethodDef RtLoop_methods[] = {
    {"start", (PyCFunction)RtLoop_start, METH_NOARGS, "Start the thread."},
    {"stop", (PyCFunction)RtLoop_stop, METH_NOARGS, "Stop the thread and join it."},
    {"__enter__", (PyCFunction)RtLoop_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)RtLoop_exit, METH_VARARGS, NULL},
    {"write_state", (PyCFunction)(void (*)(void))RtLoop_write_state,
     METH_VARARGS | METH_KEYWORDS,
     "write_state(q, qd, wheel_q, wheel_qd): the latest measurement for the next tick."},
    {"read_output", (PyCFunction)RtLoop_read_output, METH_O,
     "read_output(out) -> int: copy the latest output into the KernelOutput; returns the "
     "tick it came from."},
    {"set_trajectory", (PyCFunction)(void (*)(void))RtLoop_set_trajectory,
     METH_VARARGS | METH_KEYWORDS, "ControlKernel.set_trajectory, under the kernel lock."},
    {"set_base_command", (PyCFunction)(void (*)(void))RtLoop_set_base_command,
     METH_VARARGS | METH_KEYWORDS, "ControlKernel.set_base_command, under the kernel lock."},
    {"set_supervisor", (PyCFunction)(void (*)(void))RtLoop_set_supervisor,
     METH_VARARGS | METH_KEYWORDS, "ControlKernel.set_supervisor, under the kernel lock."},
    {"pin_supervisor", (PyCFunction)RtLoop_pin_supervisor, METH_O,
     "ControlKernel.pin_supervisor, under the kernel lock."},
    {"stats", (PyCFunction)RtLoop_stats, METH_NOARGS,
     "stats() -> dict(mean_period_s, std_period_s, p99_error_s, max_error_s, overruns, "
     "ticks)"},
    {"now", (PyCFunction)RtLoop_now, METH_NOARGS | METH_STATIC,
     "now() -> float: CLOCK_MONOTONIC [s], the clock of the loop (= time.monotonic())."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef RtLoop_getset[] = {
    {"running", (getter)RtLoop_get_running, NULL, "True while the thread runs", NULL},
    {"realtime", (getter)RtLoop_get_realtime, NULL,
     "True when the running thread got SCHED_FIFO", NULL},
    {"rate_hz", (getter)RtLoop_get_rate_hz, NULL, "tick rate [Hz]", NULL},
    {"kernel", (getter)RtLoop_get_kernel, NULL, "the kernel it steps", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject RtLoopType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sitebot.control._control_kernel.RtLoop",
    .tp_basicsize = sizeof(RtLoopObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "RtLoop(kernel, rate_hz=1000.0): steps the C kernel in a fixed-rate pthread.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)RtLoop_init,
    .tp_dealloc = (destructor)RtLoop_dealloc,
    .tp_traverse = (traverseproc)RtLoop_traverse,
    .tp_methods = RtLoop_methods,
    .tp_getset = RtLoop_getset,
};

/* ======================================================================================
 * module
 * ====================================================================================== */

static int layout_n(PyObject *arg, Py_ssize_t *n)
{
    *n = PyLong_AsSsize_t(arg);
    if (*n == -1 && PyErr_Occurred())
        return -1;
    if (*n < 1 || *n > 1000000) {
        PyErr_Format(PyExc_ValueError, "n_joints must be in [1, 1000000], got %zd", *n);
        return -1;
    }
    return 0;
}

/* output_layout(n) -> {field: (offset, length)}: the CK_OUT_* layout for n joints */
static PyObject *module_output_layout(PyObject *module, PyObject *arg)
{
    Py_ssize_t n;
    (void)module;
    if (layout_n(arg, &n) != 0)
        return NULL;
    return Py_BuildValue(
        "{s:(nn),s:(nn),s:(nn),s:(nn),s:(nn),s:(nn),s:(nn),s:(nn),s:(nn),s:(nn),s:(nn),s:(nn)}",
        "position", (Py_ssize_t)CK_OUT_POSITION(n), n,
        "velocity", (Py_ssize_t)CK_OUT_VELOCITY(n), n,
        "effort", (Py_ssize_t)CK_OUT_EFFORT(n), n,
        "position_error", (Py_ssize_t)CK_OUT_POSITION_ERROR(n), n,
        "setpoint_velocity", (Py_ssize_t)CK_OUT_SETPOINT_VELOCITY(n), n,
        "wheel_velocity", (Py_ssize_t)CK_OUT_WHEEL_VELOCITY(n), (Py_ssize_t)2,
        "base_velocity", (Py_ssize_t)CK_OUT_BASE_VELOCITY(n), (Py_ssize_t)2,
        "odometry", (Py_ssize_t)CK_OUT_ODOMETRY(n), (Py_ssize_t)5,
        "trajectory_time_s", (Py_ssize_t)CK_OUT_TRAJECTORY_TIME(n), (Py_ssize_t)1,
        "trajectory_active", (Py_ssize_t)CK_OUT_TRAJECTORY_ACTIVE(n), (Py_ssize_t)1,
        "status", (Py_ssize_t)CK_OUT_STATUS(n), (Py_ssize_t)1,
        "latch", (Py_ssize_t)CK_OUT_LATCH(n), (Py_ssize_t)1);
}

/* output_size(n) -> int: doubles in the output buffer for n joints */
static PyObject *module_output_size(PyObject *module, PyObject *arg)
{
    Py_ssize_t n;
    (void)module;
    if (layout_n(arg, &n) != 0)
        return NULL;
    return PyLong_FromSize_t(ck_output_size(n));
}

static PyMethodDef module_methods[] = {
    {"output_layout", (PyCFunction)module_output_layout, METH_O,
     "output_layout(n) -> {field: (offset, length)}: KernelOutput's layout (CK_OUT_*)."},
    {"output_size", (PyCFunction)module_output_size, METH_O,
     "output_size(n) -> int: doubles in KernelOutput's buffer (ck_output_size)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sitebot.control._control_kernel",
    .m_doc = "The C control kernel and its fixed-rate loop (contract: docs/control.md).",
    .m_size = 0,
    .m_methods = module_methods,
};

/* Status, Reject, Interface (classes) and STOP_CATEGORY ({name: value}) into m. */
static int add_enums(PyObject *m)
{
    PyObject *enum_mod, *int_enum, *int_flag, *status, *reject, *iface, *cats;
    PyObject *heartbeat = NULL, *latch = NULL;
    int i, rc = -1;
    enum_mod = PyImport_ImportModule("enum");
    int_enum = enum_mod ? PyObject_GetAttrString(enum_mod, "IntEnum") : NULL;
    int_flag = enum_mod ? PyObject_GetAttrString(enum_mod, "IntFlag") : NULL;
    Py_XDECREF(enum_mod);
    if (!int_enum || !int_flag) {
        Py_XDECREF(int_enum);
        Py_XDECREF(int_flag);
        return -1;
    }
    status = make_int_enum(int_enum, "Status", status_table, TABLE_SIZE(status_table),
                           "What the kernel did this tick (a higher value takes priority).");
    reject = !status ? NULL :
        make_int_enum(int_enum, "Reject", reject_table, TABLE_SIZE(reject_table),
                      "Result of ``set_trajectory`` / ``set_base_command``.");
    iface = !reject ? NULL :
        make_int_enum(int_enum, "Interface", interface_table, TABLE_SIZE(interface_table),
                      "What the backend takes for the arm joints.");
    heartbeat = !iface ? NULL :
        make_int_enum(int_enum, "Heartbeat", heartbeat_table, TABLE_SIZE(heartbeat_table),
                      "Result of ``set_supervisor``.");
    latch = !heartbeat ? NULL :
        make_int_enum(int_flag, "Latch", latch_table, TABLE_SIZE(latch_table),
                      "Why the stop latch is closed (bits; 0: open).");
    Py_DECREF(int_enum);
    Py_DECREF(int_flag);
    cats = latch ? PyDict_New() : NULL;
    if (!cats)
        goto done;
    for (i = 0; i < TABLE_SIZE(stop_category_table); ++i) {
        PyObject *v = PyLong_FromLong(stop_category_table[i].value);
        if (!v || PyDict_SetItemString(cats, stop_category_table[i].name, v) < 0) {
            Py_XDECREF(v);
            goto done;
        }
        Py_DECREF(v);
    }
    Py_XSETREF(status_members, members_by_value(status, status_table, TABLE_SIZE(status_table)));
    if (!status_members)
        goto done;
    Py_XSETREF(reject_members, members_by_value(reject, reject_table, TABLE_SIZE(reject_table)));
    if (!reject_members)
        goto done;
    Py_XSETREF(heartbeat_members,
               members_by_value(heartbeat, heartbeat_table, TABLE_SIZE(heartbeat_table)));
    if (!heartbeat_members)
        goto done;
    if (PyModule_AddObjectRef(m, "Status", status) < 0 ||
        PyModule_AddObjectRef(m, "Reject", reject) < 0 ||
        PyModule_AddObjectRef(m, "Interface", iface) < 0 ||
        PyModule_AddObjectRef(m, "Heartbeat", heartbeat) < 0 ||
        PyModule_AddObjectRef(m, "Latch", latch) < 0 ||
        PyModule_AddObjectRef(m, "STOP_CATEGORY", cats) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(status);
    Py_XDECREF(reject);
    Py_XDECREF(iface);
    Py_XDECREF(heartbeat);
    Py_XDECREF(latch);
    Py_XDECREF(cats);
    return rc;
}

PyMODINIT_FUNC PyInit__control_kernel(void)
{
    PyObject *m, *slack;
    if (PyType_Ready(&KernelType) < 0 || PyType_Ready(&RtLoopType) < 0)
        return NULL;
    m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    if (add_enums(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&KernelType);
    if (PyModule_AddObject(m, "ControlKernel", (PyObject *)&KernelType) < 0) {
        Py_DECREF(&KernelType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&RtLoopType);
    if (PyModule_AddObject(m, "RtLoop", (PyObject *)&RtLoopType) < 0) {
        Py_DECREF(&RtLoopType);
        Py_DECREF(m);
        return NULL;
    }
    slack = PyFloat_FromDouble(CK_SPEED_SLACK);
    if (!slack || PyModule_AddObjectRef(m, "SPEED_SLACK", slack) < 0 ||
        PyModule_AddIntConstant(m, "MAX_JOINTS", CK_MAX_JOINTS) < 0 ||
        PyModule_AddIntConstant(m, "MAX_POINTS", CK_MAX_POINTS_LIMIT) < 0 ||
        PyModule_AddIntConstant(m, "RT_HIST_BINS", RT_HIST_BINS) < 0) {
        Py_XDECREF(slack);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(slack);
    return m;
}
