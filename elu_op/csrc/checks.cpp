// The ops' checks, all made before anything is written: aten's messages where aten has one, else
// one that names the argument and what was wrong.

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include <ATen/MemoryOverlap.h>

#include "fastelu.h"

namespace fastelu {


// Also raised for a negative or NaN input_scale, which PyTorch lets through: the result's sign then
// no longer tells which branch the input took, and the gradient would be silently wrong.
const char* const kNegativeSlopeError =
    "In-place elu backward calculation is triggered with a negative slope which is not supported. This is "
    "caused by calling in-place forward function with a negative slope, please call out-of-place version "
    "instead.";

// The dtype's name in Python (torch.int64...), for the messages.
std::string dtype_name(at::ScalarType d) {
  switch (d) {
    case at::kFloat: return "torch.float32";
    case at::kHalf: return "torch.float16";
    case at::kBFloat16: return "torch.bfloat16";
    case at::kDouble: return "torch.float64";
    case at::kBool: return "torch.bool";
    case at::kByte: return "torch.uint8";
    case at::kChar: return "torch.int8";
    case at::kShort: return "torch.int16";
    case at::kInt: return "torch.int32";
    case at::kLong: return "torch.int64";
    case at::kComplexFloat: return "torch.complex64";
    case at::kComplexDouble: return "torch.complex128";
    default: return c10::toString(d);
  }
}

// A shape for the messages, as [2, 3] (a symbolic size, under torch.compile, as ?). Not by
// streaming sym_sizes(), which crashed with torch 2.11.
std::string shape_name(const Tensor& t) {
  std::string out = "[";
  for (const auto& size : t.sym_sizes()) {
    auto v = size.maybe_as_int();
    out += (out.size() > 1 ? ", " : "") + (v ? std::to_string(*v) : std::string("?"));
  }
  return out + "]";
}

// Where a tensor's elements are not one strided buffer: its layout's name in Python, for the
// message; nullptr for a strided tensor. (A jagged nested tensor never gets here: its values do,
// nested.py. A strided nested one has no kernel: the dispatcher refuses it, as it does for aten.)
const char* unsupported_layout(const Tensor& t) {
  switch (t.layout()) {
    case at::kStrided: return nullptr;
    case at::kSparse: return "torch.sparse_coo";
    case at::kSparseCsr: return "torch.sparse_csr";
    case at::kSparseCsc: return "torch.sparse_csc";
    case at::kSparseBsr: return "torch.sparse_bsr";
    case at::kSparseBsc: return "torch.sparse_bsc";
    case at::kMkldnn: return "torch._mkldnn";
    default: return "a layout other than torch.strided";
  }
}

// None (an undefined tensor) with aten's message; NotImplementedError for other layouts, as
// aten's for a sparse COO tensor (it is a RuntimeError too, as aten's for the other layouts).
void check_tensor(const Tensor& t, const char* name, const char* argument) {
  TORCH_CHECK(t.defined(), "Expected a proper Tensor but got None (or an undefined Tensor in C++) for argument ",
              argument);
  const char* layout = unsupported_layout(t);
  TORCH_CHECK_NOT_IMPLEMENTED(layout == nullptr, "fastelu: ", name, " has layout ", layout,
                              ", but only strided tensors are supported (as by torch.nn.functional.elu)");
  auto d = t.scalar_type();
  TORCH_CHECK_TYPE(d == at::kFloat || d == at::kHalf || d == at::kBFloat16 || d == at::kDouble, "fastelu: ", name,
                   " has dtype ", dtype_name(d), ", but only float32, float16, bfloat16 and float64 are supported");
}

// aten converts alpha, scale and input_scale to the compute type (float32, for every dtype but
// float64), and refuses a finite value outside its range, with this message, even for an empty
// tensor; infinities and NaN go through.
void check_coefs(at::ScalarType dtype, const Coefs& c) {
  if (dtype == at::kDouble) return;
  const char* names[3] = {"alpha", "scale", "input_scale"};
  double values[3] = {c.alpha, c.scale, c.input_scale};
  for (int i = 0; i < 3; i++) {
    double v = values[i];
    if (!std::isfinite(v) || std::abs(v) <= std::numeric_limits<float>::max()) continue;
    // snprintf, not a stream: streaming a double segfaulted in this module on the lent H200's
    // build (torch 2.11), inside libstdc++'s locale code.
    char value[32];
    std::snprintf(value, sizeof value, "%g", v);
    TORCH_CHECK(false, "value cannot be converted to type float without overflow (fastelu: ", names[i], " = ", value,
                ", for a tensor of dtype ", dtype_name(dtype), ", which computes in float32)");
  }
}

void check_elu(const Tensor& self, const Coefs& c, bool inplace) {
  check_tensor(self, "input", "#0 'self'");
  check_coefs(self.scalar_type(), c);
  if (inplace) at::assert_no_internal_overlap(self);  // aten's own message
}

void check_backward(const Tensor& grad_output, const Coefs& c, bool is_result, const Tensor& s) {
  check_tensor(grad_output, "grad_output", "#0 'grad_output'");
  check_tensor(s, "self_or_result", "#5 'self_or_result'");
  TORCH_CHECK_TYPE(grad_output.scalar_type() == s.scalar_type(), "fastelu: grad_output has dtype ",
                   dtype_name(grad_output.scalar_type()), " but self_or_result has ", dtype_name(s.scalar_type()),
                   "; they must match");
  // sym_sizes: under torch.compile the fake kernels check symbolic shapes, which sizes() would
  // pin to the traced values (a recompile for every new batch size).
  TORCH_CHECK_VALUE(grad_output.sym_sizes() == s.sym_sizes(), "fastelu: grad_output has shape ",
                    shape_name(grad_output), " but self_or_result has ", shape_name(s), "; they must match");
  TORCH_CHECK_VALUE(grad_output.device() == s.device(), "fastelu: grad_output is on ", grad_output.device(),
                    " but self_or_result is on ", s.device());
  check_coefs(s.scalar_type(), c);
  // aten's test, which refuses a NaN alpha too; input_scale as alpha (kNegativeSlopeError)
  TORCH_CHECK(!is_result || (c.alpha >= 0 && c.input_scale >= 0), kNegativeSlopeError);
}

}  // namespace fastelu
