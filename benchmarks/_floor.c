/* The benchmark's "floor": the cheapest call into a C extension that returns a new object
 * whose `.source` attribute builds a new (str, int) tuple, the same call shape as
 * `proxyproto_rs.parse(data).source`. No parsing at all: whatever a real parser costs above
 * this is its own work (or its binding layer's overhead).
 *
 *   parse(data)      METH_O; allocates one object (no GC tracking, no copying of data)
 *   parse_buf(data)  the same, plus acquiring and releasing data's buffer (PyBUF_SIMPLE),
 *                    which a parser accepting bytes/bytearray/memoryview has to do
 *   obj.source       getset; a fresh ("192.0.2.1", 56324) on every read
 *
 * Built by benchmarks/bench.py with the system C compiler into a temporary folder.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    PyObject_HEAD
    unsigned short port;
} FloorObject;

static PyObject *
floor_source(PyObject *self, void *closure)
{
    (void)closure;
    PyObject *host = PyUnicode_FromStringAndSize("192.0.2.1", 9);
    if (host == NULL) {
        return NULL;
    }
    PyObject *port = PyLong_FromLong(((FloorObject *)self)->port);
    if (port == NULL) {
        Py_DECREF(host);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(host);
        Py_DECREF(port);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, host);
    PyTuple_SET_ITEM(pair, 1, port);
    return pair;
}

static PyGetSetDef floor_getset[] = {
    {"source", floor_source, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FloorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_pp_floor.Header",
    .tp_basicsize = sizeof(FloorObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_getset = floor_getset,
};

static PyObject *
floor_parse(PyObject *module, PyObject *data)
{
    (void)module;
    (void)data;
    FloorObject *obj = PyObject_New(FloorObject, &FloorType);
    if (obj == NULL) {
        return NULL;
    }
    obj->port = 56324;
    return (PyObject *)obj;
}

static PyObject *
floor_parse_buf(PyObject *module, PyObject *data)
{
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *obj = floor_parse(module, data);
    PyBuffer_Release(&view);
    return obj;
}

static PyMethodDef floor_methods[] = {
    {"parse", floor_parse, METH_O, NULL},
    {"parse_buf", floor_parse_buf, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef floor_module = {
    PyModuleDef_HEAD_INIT, "_pp_floor", NULL, -1, floor_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__pp_floor(void)
{
    if (PyType_Ready(&FloorType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&floor_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&FloorType);
    if (PyModule_AddObject(m, "Header", (PyObject *)&FloorType) < 0) {
        Py_DECREF(&FloorType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
