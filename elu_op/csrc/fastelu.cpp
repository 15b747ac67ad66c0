// The hot path of fastelu's ops, in C++: their CUDA kernels for dense tensors whose Triton kernel
// is already compiled, and their autograd (Autograd and ADInplaceOrView kernels, and formulas).
//
// At 4096 elements a call is all overhead, and a dispatcher trip into a Python kernel costs more
// than the whole of aten's elu (benchmarks/results/). So the common call stays in C++ from the
// dispatcher to cuLaunchKernel. Everything else is Python's, in ops.py, which this file calls
// back: compiling kernels (launcher.py registers each one here), unusual layouts and alignments,
// checks and their errors, and launches that Triton's launcher must make.

#include <dlfcn.h>

#include <mutex>
#include <optional>
#include <unordered_map>

#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/extension.h>
#include <torch/library.h>

namespace {

namespace py = pybind11;
using at::Tensor;

// ---- compiled kernels, registered from Python ------------------------------------------------

constexpr int kMaxExtra = 8;

struct Kernel {
  void* function = nullptr;  // CUfunction
  unsigned threads = 0, shared = 0;
  int extra = 0;  // pointer parameters Triton appends (scratch buffers, unused: passed as null)
  bool wide = false;  // n is a 64-bit parameter
};

// One per (device, dtype, size bucket, mode). Kernels by offset width (kernel.width): 0 int32,
// 1 int64 with a 32-bit n, 2 a 64-bit n, each registered when a size first needs it.
struct Slot {
  int64_t block = 0;
  Kernel kernels[3];
};

struct Python {
  py::object elu, elu_, elu_backward;  // ops.py's complete CUDA kernels
  py::object runtime;  // triton.knobs.runtime: its launch hooks
};

std::mutex mutex;  // guards everything below, written by Python, read by any thread
std::unordered_map<int64_t, Slot> slots;
std::vector<int64_t> buckets;  // configs.BUCKETS
int64_t int32_safe = 0;  // kernel.INT32_SAFE
Python* python = nullptr;  // never freed: destroying Python objects at exit would need the GIL

enum Mode { FORWARD = 0, BACKWARD_FROM_INPUT = 1, BACKWARD_FROM_RESULT = 2 };

int dtype_index(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return 0;
    case at::kHalf: return 1;
    case at::kBFloat16: return 2;
    case at::kDouble: return 3;
    default: return -1;
  }
}

int64_t slot_key(int64_t device, int dtype, int64_t bucket, int mode) {
  return ((device * 4 + dtype) * 8 + bucket) * 3 + mode;
}

int64_t bucket_of(int64_t n) {
  int64_t b = 0;
  while (b < (int64_t)buckets.size() && n > buckets[b]) b++;
  return b;
}

struct Plan {
  int64_t block;
  Kernel kernel;
};

// The compiled kernel for n elements of t's dtype on t's device, if Python registered one.
std::optional<Plan> plan(const Tensor& t, int mode) {
  int dtype = dtype_index(t.scalar_type());
  int64_t n = t.numel();
  if (dtype < 0 || n == 0 || !t.is_cuda()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = slots.find(slot_key(t.get_device(), dtype, bucket_of(n), mode));
  if (it == slots.end()) return std::nullopt;
  const Slot& slot = it->second;
  const Kernel& k = slot.kernels[n <= int32_safe - slot.block ? 0 : n <= int32_safe ? 1 : 2];
  if (k.function == nullptr) return std::nullopt;
  return Plan{slot.block, k};
}

// False where the kernel needs more than the C++ passes: it then stays with Triton's launcher.
bool register_kernel(int64_t device, at::ScalarType dtype, int64_t n, int mode, int64_t block, int width,
                     uintptr_t function, unsigned threads, unsigned shared, int extra, bool wide) {
  int d = dtype_index(dtype);
  TORCH_CHECK(d >= 0 && mode >= 0 && mode < 3 && width >= 0 && width < 3 && block > 0, "register_kernel: bad key");
  if (extra < 0 || extra > kMaxExtra) return false;
  std::lock_guard<std::mutex> lock(mutex);
  Slot& slot = slots[slot_key(device, d, bucket_of(n), mode)];
  if (slot.block != block) slot = Slot{block, {}};  // a new configuration (after tuning)
  slot.kernels[width] = Kernel{reinterpret_cast<void*>(function), threads, shared, extra, wide};
  return true;
}

void forget() {
  std::lock_guard<std::mutex> lock(mutex);
  slots.clear();
}

// ---- launching ------------------------------------------------------------------------------

using cu_launch_kernel_t = int (*)(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                   void*, void**, void**);

cu_launch_kernel_t cu_launch_kernel() {
  static cu_launch_kernel_t fn = [] {
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    return lib ? reinterpret_cast<cu_launch_kernel_t>(dlsym(lib, "cuLaunchKernel")) : nullptr;
  }();
  return fn;
}

// Profilers that hook Triton's launches (Proton) must see ours: with a hook set, Triton launches.
bool launch_hooked() {
  py::gil_scoped_acquire gil;
  return py::len(python->runtime.attr("launch_enter_hook").attr("calls")) ||
         py::len(python->runtime.attr("launch_exit_hook").attr("calls"));
}

bool aligned(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; }

float to_float(double v) { return static_cast<float>(v); }  // IEEE: out of range rounds to inf

// alpha * scale as aten forms it (kernel.negcoef says why it is formed here).
double negcoef(double alpha, double scale, bool float64) {
  if (float64) return alpha * scale;
  return to_float(static_cast<double>(to_float(alpha)) * static_cast<double>(to_float(scale)));
}

// Runs the kernel over out, x and g (undefined for the forward): dense, one layout, aligned.
// False where nothing was launched and Python's path must run instead (a hook is set, or the
// launch failed, for example in a thread without a current CUDA context).
bool launch(const Plan& p, const Tensor& out, const Tensor& x, const Tensor& g, double alpha, double scale,
            double input_scale) {
  auto launch_kernel = cu_launch_kernel();
  if (launch_kernel == nullptr || launch_hooked()) return false;
  c10::DeviceGuard guard(out.device());
  void* stream = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStream(out.device()).native_handle();
  int64_t n64 = out.numel();
  int32_t n32 = static_cast<int32_t>(n64);
  uint64_t ptrs[3] = {reinterpret_cast<uintptr_t>(out.data_ptr()), reinterpret_cast<uintptr_t>(x.data_ptr()),
                      reinterpret_cast<uintptr_t>((g.defined() ? g : x).data_ptr())};
  double coefs[3] = {negcoef(alpha, scale, out.scalar_type() == at::kDouble), scale, input_scale};
  uint64_t null_pointer = 0;
  void* params[7 + kMaxExtra] = {&ptrs[0], &ptrs[1], &ptrs[2], p.kernel.wide ? (void*)&n64 : (void*)&n32,
                                 &coefs[0], &coefs[1], &coefs[2]};
  for (int i = 0; i < p.kernel.extra; i++) params[7 + i] = &null_pointer;
  auto grid = static_cast<unsigned>((n64 + p.block - 1) / p.block);
  return launch_kernel(p.kernel.function, grid, 1, 1, p.kernel.threads, 1, 1, p.kernel.shared, stream,
                       params, nullptr) == 0;
}

// For Python's path: launch on tensors it has prepared, if their kernel is registered.
bool launch_prepared(const Tensor& out, const Tensor& x, const std::optional<Tensor>& g, double alpha,
                     double scale, double input_scale, bool is_result) {
  const Tensor& grad = g ? *g : Tensor();
  auto p = plan(out, grad.defined() ? (is_result ? BACKWARD_FROM_RESULT : BACKWARD_FROM_INPUT) : FORWARD);
  if (!p || !aligned(out) || !aligned(x) || (grad.defined() && !aligned(grad))) return false;
  return launch(*p, out, x, grad, alpha, scale, input_scale);
}

// ---- the CUDA kernels of the ops ------------------------------------------------------------

bool dense(const Tensor& t) { return t.is_non_overlapping_and_dense(); }

Tensor elu_cuda(const Tensor& self, double alpha, double scale, double input_scale) {
  if (dense(self) && aligned(self)) {
    if (auto p = plan(self, FORWARD)) {
      Tensor out = at::empty_like(self);  // a dense input's layout (channels_last...) as it is
      if (aligned(out) && launch(*p, out, self, Tensor(), alpha, scale, input_scale)) return out;
    }
  }
  py::gil_scoped_acquire gil;
  return python->elu(self, alpha, scale, input_scale).cast<Tensor>();
}

void elu_inplace_cuda(Tensor& self, double alpha, double scale, double input_scale) {
  // Dense means no two elements share memory, which is all that writing in place needs.
  if (dense(self) && aligned(self)) {
    auto p = plan(self, FORWARD);
    if (p && launch(*p, self, self, Tensor(), alpha, scale, input_scale)) return;
  }
  py::gil_scoped_acquire gil;
  python->elu_(self, alpha, scale, input_scale);
}

Tensor elu_backward_cuda(const Tensor& grad_output, double alpha, double scale, double input_scale, bool is_result,
                         const Tensor& self_or_result) {
  const Tensor& s = self_or_result;
  bool simple = grad_output.scalar_type() == s.scalar_type() && grad_output.device() == s.device() &&
                grad_output.sizes() == s.sizes() && grad_output.strides() == s.strides() && dense(s) &&
                aligned(s) && aligned(grad_output) && !(is_result && (alpha < 0 || input_scale < 0));
  if (simple) {
    if (auto p = plan(s, is_result ? BACKWARD_FROM_RESULT : BACKWARD_FROM_INPUT)) {
      Tensor out = at::empty_like(s);
      if (aligned(out) && launch(*p, out, s, grad_output, alpha, scale, input_scale)) return out;
    }
  }
  py::gil_scoped_acquire gil;
  return python->elu_backward(grad_output, alpha, scale, input_scale, is_result, s).cast<Tensor>();
}

// ---- autograd ---------------------------------------------------------------------------------
// The formulas are aten's (derivatives.yaml): elu saves its input, elu_ its result, and
// elu_backward is itself differentiable, so second derivatives work. Written as aten's generated
// autograd kernels are (graph nodes, forward gradients at level 0), not as autograd::Functions:
// that is what makes forward-mode AD and torch.func's transforms (grad, jvp, jacfwd, vmap of
// grad), which wrap tensors around these same kernels, work as they do for aten's elu.

using EluSignature = Tensor(const Tensor&, double, double, double);
using EluInplaceSignature = void(Tensor&, double, double, double);
using EluBackwardSignature = Tensor(const Tensor&, double, double, double, bool, const Tensor&);

template <typename Signature>
const c10::TypedOperatorHandle<Signature>& op(const char* name) {
  // One handle per signature, and each of fastelu's ops has its own.
  static auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
  return handle;
}
const auto& elu_op() { return op<EluSignature>("fastelu::elu"); }
const auto& elu_inplace_op() { return op<EluInplaceSignature>("fastelu::elu_"); }
const auto& elu_backward_op() { return op<EluBackwardSignature>("fastelu::elu_backward"); }

// Also raised for a negative input_scale, which PyTorch lets through: the result's sign then no
// longer tells which branch the input took, and the gradient would be silently wrong.
constexpr const char* kNegativeSlopeError =
    "In-place elu backward calculation is triggered with a negative slope which is not supported. This is "
    "caused by calling in-place forward function with a negative slope, please call out-of-place version "
    "instead.";

using torch::autograd::Node;
using torch::autograd::SavedVariable;
using torch::autograd::variable_list;
// std::shared_ptr<Node> up to torch 2.12, c10::intrusive_ptr<Node> from 2.13.
using NodePtr = decltype(torch::autograd::Edge::function);

template <typename T>
NodePtr make_node() {
  if constexpr (std::is_same_v<NodePtr, std::shared_ptr<Node>>) {
    return std::shared_ptr<T>(new T());
  } else {
    return c10::make_intrusive<T>();
  }
}

struct Coefs {
  double alpha, scale, input_scale;
};

Tensor elu_backward_call(const Tensor& grad, const Coefs& c, bool is_result, const Tensor& s) {
  return elu_backward_op().call(grad, c.alpha, c.scale, c.input_scale, is_result, s);
}

// d elu_backward / d self_or_result: aten's elu_double_backward.
Tensor elu_double_backward(const Tensor& grad, const Tensor& grad_output, const Coefs& c, bool is_result,
                           const Tensor& s) {
  Tensor negative = (s < 0).type_as(grad);
  if (is_result) return grad * grad_output * c.input_scale * negative;
  return elu_backward_call(grad * grad_output * c.input_scale, c, false, s) * negative;
}

// The backward of elu (from its input) and of elu_ (from its result).
struct EluBackwardNode : Node {
  SavedVariable saved;
  Coefs coefs{};
  bool is_result = false;
  std::string name() const override { return is_result ? "FasteluEluInplaceBackward" : "FasteluEluBackward"; }
  variable_list apply(variable_list&& grads) override {
    Tensor grad_input;
    if (grads[0].defined() && should_compute_output(0))
      grad_input = elu_backward_call(grads[0], coefs, is_result, saved.unpack(getptr()));
    return {grad_input};
  }
  void release_variables() override { saved.reset_data(); }
};

// The backward of elu_backward, with respect to grad_output and self_or_result.
struct EluBackwardBackwardNode : Node {
  SavedVariable grad_output, self_or_result;
  Coefs coefs{};
  bool is_result = false;
  std::string name() const override { return "FasteluEluBackwardBackward"; }
  variable_list apply(variable_list&& grads) override {
    const Tensor& grad = grads[0];
    Tensor d_grad_output, d_s;
    if (!grad.defined()) return {d_grad_output, d_s};
    Tensor s = self_or_result.unpack(getptr());
    if (should_compute_output(0)) d_grad_output = elu_backward_call(grad, coefs, is_result, s);
    if (should_compute_output(1)) d_s = elu_double_backward(grad, grad_output.unpack(getptr()), coefs, is_result, s);
    return {d_grad_output, d_s};
  }
  void release_variables() override {
    grad_output.reset_data();
    self_or_result.reset_data();
  }
};

using torch::autograd::collect_next_edges;
using torch::autograd::compute_requires_grad;
using torch::autograd::isFwGradDefined;

Tensor tangent(const Tensor& t) { return t._fw_grad(/*level=*/0); }

Tensor elu_autograd(c10::DispatchKeySet keys, const Tensor& self, double alpha, double scale, double input_scale) {
  NodePtr grad_fn;
  if (compute_requires_grad(self)) {
    auto node = make_node<EluBackwardNode>();
    auto* n = static_cast<EluBackwardNode*>(node.get());
    n->set_next_edges(collect_next_edges(self));
    n->saved = SavedVariable(self, false);
    n->coefs = {alpha, scale, input_scale};
    grad_fn = std::move(node);
  }
  Tensor result;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    result = elu_op().redispatch(keys & c10::after_autograd_keyset, self, alpha, scale, input_scale);
  }
  if (grad_fn) torch::autograd::set_history(result, grad_fn);
  if (isFwGradDefined(self)) {
    Tensor t = elu_backward_call(tangent(self), {alpha, scale, input_scale}, false, self._fw_primal(0));
    result._set_fw_grad(t, /*level=*/0, /*is_inplace_op=*/false);
  }
  return result;
}

void elu_inplace_autograd(c10::DispatchKeySet keys, Tensor& self, double alpha, double scale, double input_scale) {
  bool requires_grad = compute_requires_grad(self);
  bool has_tangent = isFwGradDefined(self);
  // PyTorch finds these only after writing (or, for the slope, in backward); we refuse first.
  torch::autograd::check_inplace(self, requires_grad);
  // Both derivatives come from the result, whose sign must tell which branch the input took.
  TORCH_CHECK(!((requires_grad || has_tangent) && (alpha < 0 || input_scale < 0)), kNegativeSlopeError);
  NodePtr grad_fn;
  if (requires_grad) {
    grad_fn = make_node<EluBackwardNode>();
    auto* n = static_cast<EluBackwardNode*>(grad_fn.get());
    n->set_next_edges(collect_next_edges(self));
    n->coefs = {alpha, scale, input_scale};
    n->is_result = true;
  }
  {
    at::AutoDispatchBelowAutograd guard;
    elu_inplace_op().redispatch(keys & c10::after_autograd_keyset, self, alpha, scale, input_scale);
  }
  if (grad_fn) {
    torch::autograd::rebase_history(self, grad_fn);
    static_cast<EluBackwardNode*>(grad_fn.get())->saved = SavedVariable(self, true, self.is_view());  // the result
  }
  if (has_tangent) {
    Tensor t = tangent(self);
    t.copy_(elu_backward_call(t, {alpha, scale, input_scale}, true, self._fw_primal(0)));
    self._set_fw_grad(t, /*level=*/0, /*is_inplace_op=*/true);
  }
}

// As aten's in-place ops: bump the version counter, so tensors saved for backward notice the write.
void elu_inplace_ad_inplace_or_view(c10::DispatchKeySet keys, Tensor& self, double alpha, double scale,
                                    double input_scale) {
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    elu_inplace_op().redispatch(keys & c10::after_ADInplaceOrView_keyset, self, alpha, scale, input_scale);
  }
  torch::autograd::impl::bump_version(self);
}

Tensor elu_backward_autograd(c10::DispatchKeySet keys, const Tensor& grad_output, double alpha, double scale,
                             double input_scale, bool is_result, const Tensor& self_or_result) {
  Coefs coefs{alpha, scale, input_scale};
  NodePtr grad_fn;
  if (compute_requires_grad(grad_output, self_or_result)) {
    auto node = make_node<EluBackwardBackwardNode>();
    auto* n = static_cast<EluBackwardBackwardNode*>(node.get());
    n->set_next_edges(collect_next_edges(grad_output, self_or_result));
    n->grad_output = SavedVariable(grad_output, false);
    n->self_or_result = SavedVariable(self_or_result, false);
    n->coefs = coefs;
    n->is_result = is_result;
    grad_fn = std::move(node);
  }
  Tensor result;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    result = elu_backward_op().redispatch(keys & c10::after_autograd_keyset, grad_output, alpha, scale, input_scale,
                                          is_result, self_or_result);
  }
  if (grad_fn) torch::autograd::set_history(result, grad_fn);
  bool go_t = isFwGradDefined(grad_output), s_t = isFwGradDefined(self_or_result);
  if (go_t || s_t) {
    Tensor s = self_or_result._fw_primal(0), t;
    if (go_t) t = elu_backward_call(tangent(grad_output), coefs, is_result, s);
    if (s_t) {
      Tensor d = elu_double_backward(tangent(self_or_result), grad_output._fw_primal(0), coefs, is_result, s);
      t = t.defined() ? t + d : d;
    }
    result._set_fw_grad(t, /*level=*/0, /*is_inplace_op=*/false);
  }
  return result;
}

void setup(std::vector<int64_t> bucket_bounds, int64_t int32_safe_n, py::dict callbacks, py::object runtime) {
  std::lock_guard<std::mutex> lock(mutex);
  buckets = std::move(bucket_bounds);
  int32_safe = int32_safe_n;
  python = new Python{callbacks["elu"], callbacks["elu_"], callbacks["elu_backward"], runtime};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastelu, CUDA, m) {
  m.impl("elu", &elu_cuda);
  m.impl("elu_", &elu_inplace_cuda);
  m.impl("elu_backward", &elu_backward_cuda);
}

TORCH_LIBRARY_IMPL(fastelu, Autograd, m) {
  m.impl("elu", &elu_autograd);
  m.impl("elu_", &elu_inplace_autograd);
  m.impl("elu_backward", &elu_backward_autograd);
}

TORCH_LIBRARY_IMPL(fastelu, ADInplaceOrView, m) { m.impl("elu_", &elu_inplace_ad_inplace_or_view); }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("setup", &setup, "Hand over the size buckets, the int32 limit and ops.py's kernels (once, at import).");
  m.def("register_kernel", &register_kernel, "Make a compiled kernel launchable from C++.");
  m.def("forget", &forget, "Drop the registered kernels (after tuning changed the configurations).");
  m.attr("NEGATIVE_SLOPE_ERROR") = kNegativeSlopeError;
  m.def("launch", &launch_prepared, "Launch on prepared tensors if their kernel is registered; False if not.");
  // The dispatcher's full path (modes, tracing, functorch, autograd), minus Python's torch.ops wrapper.
  m.def("elu", [](const Tensor& self, double alpha, double scale, double input_scale) {
    return elu_op().call(self, alpha, scale, input_scale);
  });
  m.def("elu_", [](Tensor& self, double alpha, double scale, double input_scale) {
    elu_inplace_op().call(self, alpha, scale, input_scale);
  });
}
