// fastelu's Python module: setup (what the C++ keeps of Python), the bindings, and the calls back
// into Python (configs.table, launch.py's run, Triton's launch hooks) that launch.cpp makes.

#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <torch/csrc/utils/pybind.h>

#include "fastelu.h"

namespace fastelu {

namespace py = pybind11;

namespace {

struct Python {
  py::object launch;  // the module elu_op.launch (its run() is looked up at each call, so tests can wrap it)
  py::object table;   // configs.table(device) -> {direction: {itemsize: ((block, warps),) * 4}}
};
Python* python = nullptr;  // never freed: destroying Python objects at exit would need the GIL
// The `calls` lists of Triton's launch hooks (profilers such as Proton), read without the GIL.
PyObject* hook_lists[2] = {nullptr, nullptr};

void setup(py::object launch_module, py::object table, py::object hooks, std::array<int64_t, 3> bucket_bounds,
           int moderate, bool interpret) {
  python = new Python{launch_module, table};
  for (int i = 0; i < 2; i++) {
    py::object list = hooks[py::int_(i)];
    hook_lists[i] = list.is_none() ? nullptr : list.inc_ref().ptr();  // kept for good, as python
  }
  configure(bucket_bounds, moderate);
  interpret_cpu(interpret);
}

}  // namespace

Table python_table(int64_t device) {
  py::gil_scoped_acquire gil;
  py::dict all = python->table(device);
  Table table;
  for (int d = 0; d < 2; d++) {
    py::dict sizes = all[d ? "backward" : "forward"];
    for (int s = 0; s < 3; s++) {
      auto rows = sizes[py::int_(int64_t(2) << s)].cast<std::vector<std::pair<int64_t, int64_t>>>();
      TORCH_CHECK(rows.size() == 4, "configs.table: four size buckets expected");
      for (int b = 0; b < 4; b++) table[d][s][b] = Config{rows[b].first, rows[b].second};
    }
  }
  return table;
}

// A launch's parameters as Triton is passed them: by name, the tensors themselves.
struct ByName {
  py::dict& args;
  void operator()(const char* name, const TensorArg& t) const { args[name] = *t.tensor; }
  void operator()(const char* name, const Count& n) const { args[name] = n.n64; }
  template <typename T>
  void operator()(const char* name, const T& v) const { args[name] = v; }
};

Kernel python_launch(const Launch& l) {
  py::gil_scoped_acquire gil;
  py::dict args;
  l.args.each(ByName{args});
  l.spec.each(ByName{args});
  py::object handed = python->launch.attr("run")(args, l.grid, l.spec.warps);
  if (handed.is_none()) return {};
  auto t = handed.cast<std::tuple<uintptr_t, unsigned, unsigned, int, bool>>();
  Kernel k{reinterpret_cast<void*>(std::get<0>(t)), std::get<1>(t), std::get<2>(t), std::get<3>(t), std::get<4>(t)};
  return k.extra < 0 || k.extra > kMaxExtra ? Kernel{} : k;
}

// A list's length is one aligned word, read atomically, so this takes no GIL.
bool hooked() {
  for (PyObject* list : hook_lists)
    if (list && __atomic_load_n(&reinterpret_cast<PyVarObject*>(list)->ob_size, __ATOMIC_RELAXED)) return true;
  return false;
}

}  // namespace fastelu

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using namespace fastelu;
  m.def("setup", &setup,
        "Once, at import: the module launch.py, configs.table, Triton's launch-hook lists, the size buckets, "
        "coefficients.MODERATE, and whether CPU tensors run the kernel under Triton's interpreter.");
  m.def("parameters", [] {
    std::vector<std::string> names;
    auto add = [&](const char* name, const auto&) { names.push_back(name); };
    Args{}.each(add);
    Spec{}.each(add);
    return names;
  }, "elu_kernel's parameters as a launch passes them, in order (kernel.PARAMS's names, tests/test_params.py).");
  m.def("forget", &forget, "Drop the launch tables and compiled kernels (after tuning changed the tables).");
  m.def("route_aten", &route_aten, "enable(): serve aten's elu, elu_ and elu_backward on CUDA tensors (or stop).");
  m.def("negcoef", &negcoef, "alpha * scale as aten forms it for a float64 tensor (True) or any other.");
  m.def("normal", [](bool float16, bool backward, bool is_result, double alpha, double scale, double input_scale) {
    return normal_math(float16, backward, is_result, {alpha, scale, input_scale});
  }, "Whether a float16 kernel (float16: False for any other dtype) takes the cheaper NORMAL math.",
        py::arg("float16"), py::arg("backward"), py::arg("is_result"), py::arg("alpha"), py::arg("scale"),
        py::arg("input_scale"));
  m.def("plan", [](int64_t device, int64_t itemsize, int64_t n, bool backward) {
    Config c = config_for(device, backward, itemsize, n);
    return std::make_tuple(c.block, c.warps, width(n, n, c.block));
  }, "(BLOCK, num_warps, offset width) of a launch over n elements of itemsize bytes on a device (-1: CPU).",
        py::arg("device"), py::arg("itemsize"), py::arg("n"), py::arg("backward") = false);
  m.def("layout", [](const Tensor& out, const Tensor& x, const std::optional<Tensor>& g, int64_t block) {
    std::optional<Layout> l = view_layout(out, x, g ? *g : x, block);
    if (!l) return py::object(py::none());
    py::dict d;
    d["dims"] = l->dims, d["cols"] = l->cols, d["rows"] = l->block / l->cols, d["unit"] = l->unit;
    d["align"] = l->align, d["trans"] = l->trans;
    d["sizes"] = std::vector<int64_t>(l->params.begin() + kDims - l->dims, l->params.begin() + kDims);
    return py::object(d);
  }, "The tile a launch over views out, x and g (None: the forward) takes given BLOCK (dims, cols, rows, which "
     "tensors step by 1 along the columns (unit) or are read along the rows (trans), align, the sizes walked); "
     "None where they are flat arrays, or have more dimensions than the kernel walks (aten's kernel takes those).",
        py::arg("out"), py::arg("x"), py::arg("g"), py::arg("block"));
  // Checks for the fake kernels, which see the same errors as the real ones.
  m.def("check", [](const Tensor& self, bool inplace, double alpha, double scale, double input_scale) {
    check_elu(self, {alpha, scale, input_scale}, inplace);
  });
  m.def("check_backward", [](const Tensor& grad_output, double alpha, double scale, double input_scale,
                             bool is_result, const Tensor& s) {
    check_backward(grad_output, {alpha, scale, input_scale}, is_result, s);
  });
  // For tune and the benchmarks: a launch on tensors of one shape, in a given configuration
  // (block 0: the table's), with no checks.
  m.def("launch", [](const Tensor& out, const Tensor& x, const std::optional<Tensor>& g, double alpha, double scale,
                     double input_scale, bool is_result, int64_t block, int64_t warps) {
    run(out, x, g ? *g : Tensor(), {alpha, scale, input_scale}, is_result, Config{block, warps});
  }, py::arg("out"), py::arg("x"), py::arg("g"), py::arg("alpha"), py::arg("scale"), py::arg("input_scale"),
        py::arg("is_result"), py::arg("block") = 0, py::arg("warps") = 0, py::call_guard<py::gil_scoped_release>());
  // The dispatcher's full path (modes, tracing, functorch, autograd), minus Python's torch.ops
  // wrapper. Without the GIL, as aten's own Python bindings call their ops.
  m.def("elu", [](const Tensor& self, double alpha, double scale, double input_scale) {
    return call_elu(self, alpha, scale, input_scale);
  }, py::call_guard<py::gil_scoped_release>());
  m.def("elu_", [](Tensor& self, double alpha, double scale, double input_scale) {
    call_elu_(self, alpha, scale, input_scale);
  }, py::call_guard<py::gil_scoped_release>());
}
