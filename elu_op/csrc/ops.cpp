// fastelu's ops in the dispatcher: which kernel (outputs.cpp) serves which key, enable()'s routing
// of aten's own ops to them, and autograd. The autograd formulas are aten's (derivatives.yaml): elu
// saves its input, elu_ its result, and elu_backward is itself differentiable, so second derivatives
// work. Written as aten's generated autograd kernels are (graph nodes, forward gradients at level 0),
// not as autograd::Functions: that is what makes forward-mode AD and torch.func's transforms (grad,
// jvp, jacfwd, vmap of grad), which wrap tensors around these same kernels, work as for aten's elu.

// ATen's headers include one header per operator they use rather than all of ATen/Functions.h,
// as in PyTorch's own build: the first import compiles this file, and that saves a fifth of it.
#define AT_PER_OPERATOR_HEADERS

#include <memory>
#include <string>
#include <type_traits>

#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

#include "fastelu.h"

namespace fastelu {
namespace {
using at::Scalar;
using EluSignature = Tensor(const Tensor&, const Scalar&, const Scalar&, const Scalar&);
using EluInplaceSignature = void(Tensor&, const Scalar&, const Scalar&, const Scalar&);
using EluBackwardSignature = Tensor(const Tensor&, const Scalar&, const Scalar&, const Scalar&, bool, const Tensor&);

// The coefficients as the ops take them: Scalars, which stay symbolic while torch.compile traces
// (autograd's kernels run then too), and become numbers only in the kernels.
struct Scalars {
  Scalar alpha, scale, input_scale;
};

template <typename Signature>
const c10::TypedOperatorHandle<Signature>& op(const char* name) {
  // One handle per signature, and each of fastelu's ops has its own.
  static auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
  return handle;
}
const auto& elu_op() { return op<EluSignature>("fastelu::elu"); }
const auto& elu_inplace_op() { return op<EluInplaceSignature>("fastelu::elu_"); }
const auto& elu_backward_op() { return op<EluBackwardSignature>("fastelu::elu_backward"); }

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

Tensor elu_backward_call(const Tensor& grad, const Scalars& c, bool is_result, const Tensor& s) {
  return elu_backward_op().call(grad, c.alpha, c.scale, c.input_scale, is_result, s);
}

// d elu_backward / d self_or_result: aten's elu_double_backward.
Tensor elu_double_backward(const Tensor& grad, const Tensor& grad_output, const Scalars& c, bool is_result,
                           const Tensor& s) {
  Tensor negative = s.lt(0).type_as(grad);
  if (is_result) return grad.mul(grad_output).mul(c.input_scale).mul(negative);
  return elu_backward_call(grad.mul(grad_output).mul(c.input_scale), c, false, s).mul(negative);
}

// The backward of elu (from its input) and of elu_ (from its result).
struct EluBackwardNode : Node {
  SavedVariable saved;
  Scalars coefs;
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
  Scalars coefs;
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
  void release_variables() override { grad_output.reset_data(), self_or_result.reset_data(); }
};

using torch::autograd::collect_next_edges, torch::autograd::compute_requires_grad, torch::autograd::isFwGradDefined;

Tensor tangent(const Tensor& t) { return t._fw_grad(/*level=*/0); }

Tensor elu_autograd(c10::DispatchKeySet keys, const Tensor& self, const Scalar& alpha, const Scalar& scale,
                    const Scalar& input_scale) {
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

// What check_backward refuses for a gradient from the result (kNegativeSlopeError).
bool negative_slope(const Scalar& alpha, const Scalar& input_scale) {
  return !(alpha.toDouble() >= 0 && input_scale.toDouble() >= 0);
}

void elu_inplace_autograd(c10::DispatchKeySet keys, Tensor& self, const Scalar& alpha, const Scalar& scale,
                          const Scalar& input_scale) {
  bool requires_grad = compute_requires_grad(self);
  bool has_tangent = isFwGradDefined(self);
  // PyTorch finds these only after writing; we refuse first.
  torch::autograd::check_inplace(self, requires_grad);
  // Both derivatives come from the result, whose sign must tell which branch the input took. A
  // tangent is due now, so a negative slope is refused now (PyTorch: after writing); a gradient is
  // due only in backward, where the backward node's elu_backward refuses it, as PyTorch's does: a
  // forward that no backward follows (evaluation without no_grad) runs as PyTorch's.
  TORCH_CHECK(!(has_tangent && negative_slope(alpha, input_scale)), kNegativeSlopeError);
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
void elu_inplace_ad_inplace_or_view(c10::DispatchKeySet keys, Tensor& self, const Scalar& alpha,
                                    const Scalar& scale, const Scalar& input_scale) {
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    elu_inplace_op().redispatch(keys & c10::after_ADInplaceOrView_keyset, self, alpha, scale, input_scale);
  }
  torch::autograd::impl::bump_version(self);
}

Tensor elu_backward_autograd(c10::DispatchKeySet keys, const Tensor& grad_output, const Scalar& alpha,
                             const Scalar& scale, const Scalar& input_scale, bool is_result,
                             const Tensor& self_or_result) {
  Scalars coefs{alpha, scale, input_scale};
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
      t = t.defined() ? t.add(d) : d;
    }
    result._set_fw_grad(t, /*level=*/0, /*is_inplace_op=*/false);
  }
  return result;
}

bool cpu_interpreted = false;  // set once, by setup()

bool triton_runs(const Tensor& t) { return t.is_cuda() || (cpu_interpreted && t.is_cpu()); }

// One kernel for every device that branches here, rather than a CUDA kernel beside a fallback:
// torch.export's decompositions pass over a custom op wherever it has a kernel registered for the
// device itself (export.py). The Scalars become numbers here, as aten converts them (a complex
// one with an imaginary part is refused).
Tensor elu_any(const Tensor& self, const Scalar& alpha, const Scalar& scale, const Scalar& input_scale) {
  auto kernel = triton_runs(self) ? elu_kernel : elu_aten;
  return kernel(self, alpha.toDouble(), scale.toDouble(), input_scale.toDouble());
}

void elu_inplace_any(Tensor& self, const Scalar& alpha, const Scalar& scale, const Scalar& input_scale) {
  auto kernel = triton_runs(self) ? elu_inplace_kernel : elu_inplace_aten;
  kernel(self, alpha.toDouble(), scale.toDouble(), input_scale.toDouble());
}

Tensor elu_backward_any(const Tensor& grad_output, const Scalar& alpha, const Scalar& scale,
                        const Scalar& input_scale, bool is_result, const Tensor& self_or_result) {
  auto kernel = triton_runs(grad_output) ? elu_backward_kernel : elu_backward_aten;
  return kernel(grad_output, alpha.toDouble(), scale.toDouble(), input_scale.toDouble(), is_result, self_or_result);
}

}  // namespace

// ---- enable(): aten's own ops on CUDA tensors, served by the kernels above ----------------------

Tensor aten_elu(const Tensor& self, const at::Scalar& alpha, const at::Scalar& scale, const at::Scalar& input_scale) {
  return elu_kernel(self, alpha.toDouble(), scale.toDouble(), input_scale.toDouble());
}

Tensor& aten_elu_(Tensor& self, const at::Scalar& alpha, const at::Scalar& scale, const at::Scalar& input_scale) {
  elu_inplace_kernel(self, alpha.toDouble(), scale.toDouble(), input_scale.toDouble());
  return self;
}

Tensor aten_elu_backward(const Tensor& grad_output, const at::Scalar& alpha, const at::Scalar& scale,
                         const at::Scalar& input_scale, bool is_result, const Tensor& self_or_result) {
  return elu_backward_kernel(grad_output, alpha.toDouble(), scale.toDouble(), input_scale.toDouble(), is_result,
                             self_or_result);
}

std::unique_ptr<torch::Library> aten_route;  // while enable() is on; destroying it gives aten its kernels back

void route_aten(bool on) {
  if (on && !aten_route) {
    aten_route = std::make_unique<torch::Library>(torch::Library::IMPL, "aten", c10::DispatchKey::CUDA, __FILE__,
                                                  __LINE__);
    aten_route->impl("elu", TORCH_FN(aten_elu));
    aten_route->impl("elu_", TORCH_FN(aten_elu_));
    aten_route->impl("elu_backward", TORCH_FN(aten_elu_backward));
  } else if (!on) {
    aten_route.reset();
  }
}

void interpret_cpu(bool on) { cpu_interpreted = on; }

Tensor call_elu(const Tensor& self, double alpha, double scale, double input_scale) {
  return elu_op().call(self, alpha, scale, input_scale);
}

void call_elu_(Tensor& self, double alpha, double scale, double input_scale) {
  elu_inplace_op().call(self, alpha, scale, input_scale);
}

}  // namespace fastelu

TORCH_LIBRARY_IMPL(fastelu, CompositeExplicitAutograd, m) {
  m.impl("elu", &fastelu::elu_any);
  m.impl("elu_", &fastelu::elu_inplace_any);
  m.impl("elu_backward", &fastelu::elu_backward_any);
}

TORCH_LIBRARY_IMPL(fastelu, Autograd, m) {
  m.impl("elu", &fastelu::elu_autograd);
  m.impl("elu_", &fastelu::elu_inplace_autograd);
  m.impl("elu_backward", &fastelu::elu_backward_autograd);
}

TORCH_LIBRARY_IMPL(fastelu, ADInplaceOrView, m) { m.impl("elu_", &fastelu::elu_inplace_ad_inplace_or_view); }

