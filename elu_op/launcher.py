"""Launching fastelu's compiled kernel straight through the CUDA driver.

Triton's launcher (CompiledKernel.run) is generic: a Python wrapper that sets up scratch buffers,
then a C function that parses some twenty arguments by format string, makes a CUDA context
current and calls cuLaunchKernelEx. At 4096 elements it was most of fastelu's call on the H100
(benchmarks/results/). fastelu's kernel has one fixed parameter list and uses none of that, so a
small C function calls cuLaunchKernel with exactly that list. It is compiled once per machine by
Triton's own build helper, the way Triton builds its launchers (so it needs nothing Triton does
not), and cached in Triton's cache directory.
"""
import functools
import re
import warnings

_SOURCE = r"""
#include <Python.h>
#include <dlfcn.h>
#include <stdint.h>

typedef int (*cu_launch_kernel_t)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                  unsigned, void *, void **, void **);
static cu_launch_kernel_t cu_launch_kernel;

#define MAX_EXTRA 8

/* launch(function, grid, threads, shared, stream, out, x, g, n, n_is_64bit, negcoef, scale,
   input_scale, extra) -> the CUresult of cuLaunchKernel. The kernel's parameters are the three
   pointers, n, the three doubles, then `extra` pointer parameters Triton appends (scratch
   buffers, null when unused). */
static PyObject *launch(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs != 14) {
    PyErr_SetString(PyExc_TypeError, "launch() takes 14 arguments");
    return NULL;
  }
  if (!cu_launch_kernel) {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib)
      cu_launch_kernel = (cu_launch_kernel_t)dlsym(lib, "cuLaunchKernel");
    if (!cu_launch_kernel) {
      PyErr_SetString(PyExc_RuntimeError, "fastelu: no cuLaunchKernel in libcuda.so.1 (no CUDA driver?)");
      return NULL;
    }
  }
  void *function = PyLong_AsVoidPtr(args[0]);
  unsigned grid = (unsigned)PyLong_AsUnsignedLong(args[1]);
  unsigned threads = (unsigned)PyLong_AsUnsignedLong(args[2]);
  unsigned shared = (unsigned)PyLong_AsUnsignedLong(args[3]);
  void *stream = PyLong_AsVoidPtr(args[4]);
  uint64_t ptrs[3] = {PyLong_AsUnsignedLongLong(args[5]), PyLong_AsUnsignedLongLong(args[6]),
                      PyLong_AsUnsignedLongLong(args[7])};
  int64_t n64 = PyLong_AsLongLong(args[8]);
  int wide = PyObject_IsTrue(args[9]);
  double coefs[3] = {PyFloat_AsDouble(args[10]), PyFloat_AsDouble(args[11]), PyFloat_AsDouble(args[12])};
  long extra = PyLong_AsLong(args[13]);
  if (PyErr_Occurred())
    return NULL;
  if (extra < 0 || extra > MAX_EXTRA) {
    PyErr_SetString(PyExc_ValueError, "launch(): extra out of range");
    return NULL;
  }
  int32_t n32 = (int32_t)n64;
  uint64_t null_pointer = 0;
  void *params[7 + MAX_EXTRA] = {&ptrs[0], &ptrs[1], &ptrs[2], wide ? (void *)&n64 : (void *)&n32,
                                 &coefs[0], &coefs[1], &coefs[2]};
  for (long i = 0; i < extra; i++)
    params[7 + i] = &null_pointer;
  int result;
  Py_BEGIN_ALLOW_THREADS;
  result = cu_launch_kernel(function, grid, 1, 1, threads, 1, 1, shared, stream, params, NULL);
  Py_END_ALLOW_THREADS;
  return PyLong_FromLong(result);
}

static PyMethodDef methods[] = {
    {"launch", (PyCFunction)(void (*)(void))launch, METH_FASTCALL, "cuLaunchKernel of elu_kernel."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "fastelu_launch", NULL, -1, methods};

PyMODINIT_FUNC PyInit_fastelu_launch(void) { return PyModule_Create(&module); }
"""

# One PTX kernel parameter: its type and whether it is a pointer.
_PARAM = re.compile(r"\.param\s+\.(\w+)(\s+\.ptr)?")
# elu_kernel's parameters as Triton lowers them: out, x, g, n (32 or 64 bits), the three float64
# scalars, then whatever pointers Triton appends.
_EXPECTED = re.compile(r"ptr ptr ptr [usb](32|64) f64 f64 f64((?: ptr)*)")


def parameter_plan(ptx):
    """(n is 64-bit, number of appended pointers) for elu_kernel's PTX, or None if its
    parameters are not the ones the C launcher passes."""
    start = ptx.index(".entry")
    params = ptx[ptx.index("(", start):ptx.index(")", start)]
    kinds = " ".join("ptr" if ptr else kind for kind, ptr in _PARAM.findall(params))
    match = _EXPECTED.fullmatch(kinds)
    if match is None:
        return None
    return match.group(1) == "64", match.group(2).count("ptr")


@functools.cache
def c_launch():
    """The C launch function, built on first use; None (with a warning) if it cannot be built."""
    try:
        from triton.runtime.build import compile_module_from_src
        return compile_module_from_src(_SOURCE, "fastelu_launch", libraries=["dl"]).launch
    except Exception as e:  # e.g. a build setup of Triton's that this module does not know
        warnings.warn(f"fastelu: using Triton's launcher, the direct one did not build: {e}")
        return None


def direct(compiled):
    """(launch, function, threads, shared memory, n is 64-bit, appended pointers) to launch a
    compiled elu_kernel with, or None where only Triton's launcher will do: a kernel that needs
    scratch memory, clusters or special launch attributes, or parameters not as expected."""
    md = compiled.metadata
    if (getattr(md, "global_scratch_size", 0) or getattr(md, "profile_scratch_size", 0) or md.num_ctas != 1
            or getattr(md, "launch_cooperative_grid", False) or getattr(md, "launch_pdl", False)):
        return None
    plan = parameter_plan(compiled.asm["ptx"])
    fn = c_launch()
    if plan is None or fn is None:
        return None
    return (fn, compiled.function, md.num_warps * 32, md.shared) + plan
