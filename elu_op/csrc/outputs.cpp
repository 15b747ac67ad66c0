// The ops' kernels: the checks (checks.cpp), the output allocated as aten allocates it, and the
// launch (launch.cpp); on any other device, and the CPU without Triton's interpreter, aten's kernels
// after the same checks.

#include <algorithm>
#include <vector>

// ATen's operators' declarations only (the *_ops.h headers), not the whole ATen API: the first
// import compiles this file, and ATen/ATen.h alone took longer than all of it.
#include <c10/core/DispatchKeySet.h>  // which the *_ops.h headers use, and do not include

#include <ATen/ops/elu_backward_ops.h>
#include <ATen/ops/elu_ops.h>
#include <c10/core/MemoryFormat.h>

#include "fastelu.h"

namespace fastelu {


// The output aten's elu and elu_backward allocate for inputs a and b (b: undefined, or a second
// input), as TensorIterator lays it out (compute_fast_setup_type, then reorder_dimensions): where
// every input is contiguous, contiguous; where every input is channels_last (4-d only), channels_last;
// where the inputs share one dense layout, exactly their strides (size-1 dimensions' included);
// else dense in the order of a's strides, ties and broadcast (stride 0) dimensions decided by b's.
Tensor empty_like_aten(const Tensor& a, const Tensor& b) {
  auto all = [&](auto&& property) { return property(a) && (!b.defined() || property(b)); };
  if (all([](const Tensor& t) { return t.is_contiguous(); })) return a.new_empty(a.sizes());
  if (all([](const Tensor& t) { return t.is_contiguous(at::MemoryFormat::ChannelsLast); }))
    return a.new_empty_strided(a.sizes(), c10::get_channels_last_strides_2d(a.sizes()));
  if (a.is_non_overlapping_and_dense() && (!b.defined() || b.strides() == a.strides()))
    return a.new_empty_strided(a.sizes(), a.strides());
  int64_t ndim = a.dim();
  // > 0: d1 goes inside d0; < 0: it stays outside; 0: no input says
  auto compare = [&](int64_t d0, int64_t d1) {
    for (const Tensor* t : {&a, &b}) {
      if (!t->defined()) continue;
      int64_t s0 = t->stride(d0), s1 = t->stride(d1);
      if (s0 == 0 || s1 == 0) continue;
      if (s0 != s1) return s0 < s1 ? -1 : 1;
      if (a.size(d0) > a.size(d1)) return 1;
    }
    return 0;
  };
  std::vector<int64_t> perm(ndim);  // innermost first
  for (int64_t i = 0; i < ndim; i++) perm[i] = ndim - 1 - i;
  for (int64_t i = 1; i < ndim; i++) {  // TensorIterator's insertion sort, which takes "0" as it does
    int64_t d1 = i;
    for (int64_t d0 = i - 1; d0 >= 0; d0--) {
      int c = compare(perm[d0], perm[d1]);
      if (c > 0) {
        std::swap(perm[d0], perm[d1]);
        d1 = d0;
      } else if (c < 0) {
        break;
      }
    }
  }
  std::vector<int64_t> strides(ndim);
  int64_t step = 1;
  for (int64_t d : perm) {
    strides[d] = step;
    step *= std::max<int64_t>(a.size(d), 1);
  }
  return a.new_empty_strided(a.sizes(), strides);
}

Tensor elu_kernel(const Tensor& self, double alpha, double scale, double input_scale) {
  check_elu(self, {alpha, scale, input_scale}, false);
  Tensor out = empty_like_aten(self, Tensor());
  run(out, self, Tensor(), {alpha, scale, input_scale}, false);
  return out;
}

void elu_inplace_kernel(Tensor& self, double alpha, double scale, double input_scale) {
  check_elu(self, {alpha, scale, input_scale}, true);  // no two elements share memory: all in place needs
  run(self, self, Tensor(), {alpha, scale, input_scale}, false);
}

Tensor elu_backward_kernel(const Tensor& grad_output, double alpha, double scale, double input_scale, bool is_result,
                           const Tensor& self_or_result) {
  check_backward(grad_output, {alpha, scale, input_scale}, is_result, self_or_result);
  Tensor out = empty_like_aten(grad_output, self_or_result);
  run(out, self_or_result, grad_output, {alpha, scale, input_scale}, is_result);
  return out;
}

// ---- any other device, and the CPU without the interpreter: aten's kernels, after our checks ----

Tensor elu_aten(const Tensor& self, double alpha, double scale, double input_scale) {
  check_elu(self, {alpha, scale, input_scale}, false);
  return at::_ops::elu::call(self, alpha, scale, input_scale);
}

void elu_inplace_aten(Tensor& self, double alpha, double scale, double input_scale) {
  check_elu(self, {alpha, scale, input_scale}, true);
  at::_ops::elu_::call(self, alpha, scale, input_scale);
}

Tensor elu_backward_aten(const Tensor& grad_output, double alpha, double scale, double input_scale, bool is_result,
                         const Tensor& self_or_result) {
  check_backward(grad_output, {alpha, scale, input_scale}, is_result, self_or_result);
  return at::_ops::elu_backward::call(grad_output, alpha, scale, input_scale, is_result, self_or_result);
}
}  // namespace fastelu
