// fastelu's ops on CUDA tensors (and CPU tensors under TRITON_INTERPRET=1): the checks, every
// decision of a launch and the launch itself, and the ops' kernels (ops.cpp registers them).
//
// At 4096 elements a call is all overhead, and a dispatcher trip into a Python kernel costs more
// than the whole of aten's elu (benchmarks/results/). So a call stays in C++ from the dispatcher
// to cuLaunchKernel, and this file owns what a launch needs: the checks, layouts, the size
// bucket, the offset width, the coefficients, and the compiled kernels. Python owns the rest, in
// one direction (module.cpp calls it): configs.py the launch table of a device (asked once per
// device), launch.py the launches left to Triton's own launcher (the first of each kernel, which
// compiles it and hands it back here; CPU tensors under TRITON_INTERPRET=1; unaligned tensors;
// profiler hooks).

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

// ATen's operators' declarations only (the *_ops.h headers), not the whole ATen API: the first
// import compiles this file, and ATen/ATen.h alone took longer than all of it.
#include <c10/core/DispatchKeySet.h>  // which the *_ops.h headers use, and do not include

#include <ATen/MemoryOverlap.h>
#include <ATen/ops/elu_backward_ops.h>
#include <ATen/ops/elu_ops.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/MemoryFormat.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include "fastelu.h"

namespace fastelu {

// ---- checks, all made before anything is written ----------------------------------------------

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

// ---- launch decisions -------------------------------------------------------------------------

float to_float(double v) { return static_cast<float>(v); }  // IEEE: out of range rounds to inf

// alpha * scale as aten forms it: in float64 for float64 tensors, else as a float32 product of the
// float32-rounded coefficients. Formed here rather than in the kernel, where the compiler may fuse
// the product into an FMA with the result + alpha*scale of the gradient from the result, skipping
// the rounding that aten's value has; that sum cancels as x -> -inf, and the difference showed
// there as ulps by the trillion.
double negcoef(double alpha, double scale, bool float64) {
  if (float64) return alpha * scale;
  return to_float(static_cast<double>(to_float(alpha)) * static_cast<double>(to_float(scale)));
}

// 2**-MODERATE and 2**MODERATE (coefficients.MODERATE, set by configure). float16 results, and float16
// gradients from the input, whose float32 coefficients lie within them (positive ones, for the
// forward) may take the cheaper NORMAL math (coefficients.py says why it holds there). Decided here,
// once a launch, as a constexpr of the kernel: a test in every program of the kernel cost each
// thread some twenty instructions. The Inductor lowering asks the same function.
double moderate_lo = 0, moderate_hi = 0;

bool moderate(double c) { return c >= moderate_lo && c <= moderate_hi; }

bool normal_math(bool float16, bool backward, bool is_result, const Coefs& c) {
  if (!float16 || is_result) return false;
  double neg = negcoef(c.alpha, c.scale, false), ipt = to_float(c.input_scale);
  if (backward) return moderate(std::abs(neg)) && moderate(std::abs(ipt));
  return to_float(c.scale) > 0 && moderate(neg) && moderate(ipt);
}

// Whether input_scale, rounded as the kernel rounds it, is 1: the kernel then takes it as the
// constant 1 (UNIT_INPUT), whose products the compiler drops, the same values to the bit.
bool unit_input(double input_scale, bool float64) { return (float64 ? input_scale : to_float(input_scale)) == 1.0; }

// Largest element count whose offsets (plus one block of slack) stay in int32.
constexpr int64_t kInt32Safe = (int64_t(1) << 31) - 1;

// How elu_kernel addresses n elements in blocks of `block`, whose offsets reach `extent`: 0 with
// int32 offsets, 1 with int64 offsets and a 32-bit n, 2 with a 64-bit n (Triton types an n past
// int32 as i64: another kernel).
int width(int64_t n, int64_t extent, int64_t block) {
  return n > kInt32Safe ? 2 : std::max(n, extent) <= kInt32Safe - block ? 0 : 1;
}

// ---- layouts: one pass over any view, never a copy ------------------------------------------

constexpr int64_t kMinTile = 2048, kTransTile = 4096;

struct Dim {
  int64_t size;
  std::array<int64_t, 3> strides;  // out, x, g
};

// The shape of out, x and g as TensorIterator reduces it: size-1 dimensions dropped, the rest
// ordered by out's strides (then x's, then g's), outermost first, and neighbours merged where
// every tensor steps over the two as over one. A dense tensor laid out as out is one dimension of
// stride 1; a slice, a chunk, a broadcast (stride 0) or a permuted view a few.
std::vector<Dim> collapse(const Tensor& out, const Tensor& x, const Tensor& g) {
  std::vector<Dim> dims;
  for (int64_t d = 0; d < out.dim(); d++)
    if (out.size(d) != 1) dims.push_back({out.size(d), {out.stride(d), x.stride(d), g.stride(d)}});
  std::stable_sort(dims.begin(), dims.end(), [](const Dim& a, const Dim& b) { return a.strides > b.strides; });
  std::vector<Dim> merged;
  for (const Dim& d : dims) {
    if (!merged.empty()) {
      Dim& o = merged.back();
      bool one = true;
      for (int i = 0; i < 3; i++) one = one && o.strides[i] == d.strides[i] * d.size;
      if (one) {
        o.size *= d.size;
        o.strides = d.strides;
        continue;
      }
    }
    merged.push_back(d);
  }
  return merged;
}

// A tensor that the tile would read (or write) across its rows, while another dimension has a
// stride small enough that neighbours share a 32-byte sector (a gradient laid out as a transpose of
// the saved view, say): that dimension, which then goes next to the inner one, where the tile's
// rows step along it (the kernel's TRANS: that tensor's part goes through shared memory). -1: none.
int transposed_dim(const std::vector<Dim>& dims, int64_t itemsize) {
  const Dim& inner = dims.back();
  for (int i = 0; i < 3; i++) {
    int best = -1;
    for (size_t d = 0; d + 1 < dims.size(); d++) {
      int64_t s = dims[d].strides[i];
      if (s > 0 && s < inner.strides[i] && s * itemsize <= 16 && (best < 0 || s < dims[best].strides[i]))
        best = static_cast<int>(d);
    }
    if (best >= 0) return best;
  }
  return -1;
}

// dims (at most kDims of them) as elu_kernel takes them, in tiles of `block` elements or more.
Layout layout_of(std::vector<Dim> dims, int64_t block, int64_t itemsize) {
  Layout l;
  int t = transposed_dim(dims, itemsize);
  if (t >= 0) {
    Dim rows = dims[t];
    dims.erase(dims.begin() + t);
    dims.insert(dims.end() - 1, rows);
  }
  l.dims = static_cast<int>(dims.size());
  int pad = kDims - l.dims;  // outer dimensions of size 1
  for (int d = 0; d < kDims; d++) {
    Dim dim = d < pad ? Dim{1, {0, 0, 0}} : dims[d - pad];
    l.params[d] = dim.size;
    for (int i = 0; i < 3; i++) l.params[kDims * (i + 1) + d] = dim.strides[i];
  }
  const Dim& inner = dims.back();
  int64_t vector = 16 / itemsize;  // elements in a 16-byte vector
  for (int i = 0; i < 3; i++) {
    l.unit |= (inner.strides[i] == 1) << i;
    if (t >= 0) {
      const Dim& rows = dims[dims.size() - 2];
      int64_t s = rows.strides[i];
      if (!(s > 0 && s < inner.strides[i])) continue;
      l.trans |= 1 << i;
      // A transposed tensor's unit: a stride of 1 along the rows, loaded in vectors where its
      // other strides, and the rows where they wrap (three dimensions or more), keep every
      // vector inside one run of aligned elements.
      bool vectors = s == 1 && (dims.size() < 3 || rows.size % vector == 0);
      for (const Dim& d : dims) vectors = vectors && (&d == &rows || d.strides[i] % vector == 0);
      l.unit |= vectors << i;
    }
  }
  if (t >= 0) {
    // Square tiles (up to the inner size), of kTransTile elements or more: both sides of the
    // transpose read whole sectors.
    l.block = std::max(block, kTransTile);
    l.cols = 1;
    while (l.cols < inner.size && l.cols * l.cols * 4 <= l.block) l.cols *= 2;
  } else {
    // Where every tensor loads and stores vectors, a tile's index arithmetic (a few divisions a
    // program) is spread over at least kMinTile elements; strided columns keep the table's block,
    // which ran faster (benchmarks/results/NVIDIA_H200_layouts.md).
    l.block = l.unit == 7 ? std::max(block, kMinTile) : block;
    l.cols = 1;
    while (l.cols < inner.size && l.cols < l.block) l.cols *= 2;
  }
  // 16-byte vectors along the columns, for the tensors not read along the rows
  bool aligned = inner.size % vector == 0;
  std::array<int64_t, 3> extent{1, 1, 1};
  for (const Dim& d : dims)
    for (int i = 0; i < 3; i++) {
      if (&d != &inner && !(l.trans >> i & 1)) aligned = aligned && d.strides[i] % vector == 0;
      extent[i] += (d.size - 1) * d.strides[i];
    }
  l.align = aligned ? static_cast<int>(vector) : 1;
  l.extent = *std::max_element(extent.begin(), extent.end());
  return l;
}

// out, x and g's dimensions as the kernel steps over them (collapse); none where they are flat
// arrays.
std::vector<Dim> view_dims(const Tensor& out, const Tensor& x, const Tensor& g) {
  // Dense and laid out alike (the common call): flat arrays, with no collapse to work out.
  if (x.is_non_overlapping_and_dense() && out.strides() == x.strides() && g.strides() == x.strides()) return {};
  std::vector<Dim> dims = collapse(out, x, g);
  bool flat = dims.size() == 1 && dims[0].strides == std::array<int64_t, 3>{1, 1, 1};
  return flat ? std::vector<Dim>() : dims;
}

std::optional<Layout> view_layout(const Tensor& out, const Tensor& x, const Tensor& g, int64_t block) {
  std::vector<Dim> dims = view_dims(out, x, g);
  if (dims.empty() || dims.size() > kDims) return std::nullopt;
  return layout_of(dims, block, out.element_size());
}

int64_t grid_of(const Layout& l, int64_t n, int64_t block) {
  if (l.cols == 0) return (n + block - 1) / block;
  int64_t rows = l.params[0] * l.params[1] * l.params[2], per_tile = block / l.cols;
  return (l.params[3] + l.cols - 1) / l.cols * ((rows + per_tile - 1) / per_tile);
}

enum Dtype { F32, F16, BF16, F64 };
Dtype dtype_of(at::ScalarType t) {
  return t == at::kFloat ? F32 : t == at::kHalf ? F16 : t == at::kBFloat16 ? BF16 : F64;  // after check_tensor
}

// Everything a launch specialises on.
struct Key {
  int64_t device;
  Dtype dtype;
  bool backward, is_result;
  Config config;
  int width;
  bool normal;  // float16's cheaper math (normal_math)
  bool unit;  // unit_input
  int64_t cols;  // the view's (Layout): 0 for flat arrays
  int dims, unit_stride, align, trans;
  bool operator==(const Key& o) const {
    return device == o.device && dtype == o.dtype && backward == o.backward && is_result == o.is_result &&
           config.block == o.config.block && config.warps == o.config.warps && width == o.width &&
           normal == o.normal && unit == o.unit && cols == o.cols && dims == o.dims &&
           unit_stride == o.unit_stride && align == o.align && trans == o.trans;
  }
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    int64_t flags = ((((k.device * 4 + k.dtype) * 4 + k.backward * 2 + k.is_result) * 3 + k.width) * 2 + k.normal) *
                        2 + k.unit;
    int64_t view = (((k.cols * 5 + k.dims) * 8 + k.unit_stride) * 8 + k.trans) * 16 + k.align;
    return std::hash<int64_t>()((flags << 40) ^ (view << 24) ^ (k.config.block << 8) ^ k.config.warps);
  }
};

std::mutex mutex;  // guards what follows: written on first use, read by every thread
std::unordered_map<int64_t, Table> tables;  // by device (-1: the CPU, interpreted)
std::unordered_map<Key, Kernel, KeyHash> kernels;
std::array<int64_t, 3> buckets{};  // configs.BUCKETS: the size buckets' upper bounds

Config config_for(int64_t device, bool backward, int64_t itemsize, int64_t n) {
  int size = itemsize == 2 ? 0 : itemsize == 4 ? 1 : 2;
  int bucket = n <= buckets[0] ? 0 : n <= buckets[1] ? 1 : n <= buckets[2] ? 2 : 3;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = tables.find(device);
    if (it != tables.end()) return it->second[backward][size][bucket];
  }
  Table table = python_table(device);  // outside the lock: Python may call back into fastelu
  std::lock_guard<std::mutex> lock(mutex);
  return tables.emplace(device, table).first->second[backward][size][bucket];
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

// The current CUDA stream's cudaStream_t, with no CUDA headers: c10::Stream::native_handle() from
// torch 2.11 on; before it, CUDAStream::stream() from libc10_cuda, whose one member is a Stream.
template <typename Stream>
auto stream_handle(const Stream& s, void** handle, int) -> decltype(s.native_handle(), bool()) {
  *handle = s.native_handle();
  return true;
}

template <typename Stream>
bool stream_handle(const Stream& s, void** handle, long) {
  using stream_t = void* (*)(const Stream*);
  static stream_t fn = [] {
    void* lib = dlopen("libc10_cuda.so", RTLD_NOW | RTLD_NOLOAD);
    return lib ? reinterpret_cast<stream_t>(dlsym(lib, "_ZNK3c104cuda10CUDAStream6streamEv")) : nullptr;
  }();
  if (fn) *handle = fn(&s);
  return fn != nullptr;  // else Triton's launcher makes the launch
}

bool aligned(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; }

bool cu_launch(const Kernel& k, int64_t grid, const Tensor& out, const Tensor& x, const Tensor& g, double coef,
               const Coefs& c, const Layout& l) {
  auto launch_kernel = cu_launch_kernel();
  if (launch_kernel == nullptr) return false;
  void* stream = nullptr;
  if (!stream_handle(c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStream(out.device()), &stream, 0))
    return false;
  int64_t n = out.numel();
  int32_t n_int32 = static_cast<int32_t>(n);
  uint64_t ptrs[3] = {reinterpret_cast<uintptr_t>(out.data_ptr()), reinterpret_cast<uintptr_t>(x.data_ptr()),
                      reinterpret_cast<uintptr_t>(g.data_ptr())};
  double coefs[3] = {coef, c.scale, c.input_scale};
  uint64_t null_pointer = 0;
  constexpr int kFixed = 7 + 4 * kDims;
  void* params[kFixed + kMaxExtra] = {&ptrs[0], &ptrs[1], &ptrs[2], k.n64 ? (void*)&n : (void*)&n_int32,
                                      &coefs[0], &coefs[1], &coefs[2]};
  for (int i = 0; i < 4 * kDims; i++) params[7 + i] = const_cast<int64_t*>(&l.params[i]);
  for (int i = 0; i < k.extra; i++) params[kFixed + i] = &null_pointer;
  return launch_kernel(k.function, static_cast<unsigned>(grid), 1, 1, k.threads, 1, 1, k.shared, stream, params,
                       nullptr) == 0;
}

// Runs elu_kernel over out, x and g (undefined for the forward), tensors of one shape in any
// layouts (out may be x), in one pass: flat arrays where all three are dense and laid out alike,
// else the view itself (collapse). config: the device's table's unless given.
void run(const Tensor& out, const Tensor& x, const Tensor& g_or_none, const Coefs& c, bool is_result, Config config) {
  int64_t n = out.numel();
  if (n == 0) return;
  bool backward = g_or_none.defined();
  const Tensor& g = backward ? g_or_none : x;
  std::vector<Dim> dims = view_dims(out, x, g);
  bool flat = dims.empty();
  if (dims.size() > kDims) {
    // Rare (a view of a view): more dimensions than the kernel walks, no two of which merge. aten's
    // kernel takes the view in one launch, at F.elu's cost (TensorIterator walks any number).
    Tensor result = out;  // aten's out= ops take it by non-const reference
    if (backward) {
      at::_ops::elu_backward_grad_input::call(g, c.alpha, c.scale, c.input_scale, is_result, x, result);
    } else {
      at::_ops::elu_out::call(x, c.alpha, c.scale, c.input_scale, result);
    }
    return;
  }
  double coef = negcoef(c.alpha, c.scale, out.scalar_type() == at::kDouble);
  int64_t device = out.is_cuda() ? out.get_device() : -1;
  c10::OptionalDeviceGuard guard;
  if (device >= 0) guard.reset_device(out.device());
  if (config.block == 0) config = config_for(device, backward, out.element_size(), n);
  Layout layout = flat ? Layout{} : layout_of(dims, config.block, out.element_size());
  if (!flat) config.block = layout.block;
  // The transposing tile's exchange wants four warps or more: with the tables' two (a small 16-bit
  // bucket on the H100) 2**24 ran 10-15% slower (benchmarks/studies/results/NVIDIA_H100_80GB_HBM3_layouts.md).
  if (layout.trans) config.warps = std::max<int64_t>(config.warps, 4);
  int64_t grid = grid_of(layout, n, config.block);
  is_result = backward && is_result;
  Key key{device, dtype_of(out.scalar_type()), backward, is_result, config, width(n, layout.extent, config.block),
          normal_math(out.scalar_type() == at::kHalf, backward, is_result, c),
          unit_input(c.input_scale, out.scalar_type() == at::kDouble), layout.cols, layout.dims, layout.unit,
          layout.align, layout.trans};
  bool ours = device >= 0 && aligned(out) && aligned(x) && aligned(g) && !hooked();
  if (ours) {
    std::optional<Kernel> k;
    {
      std::lock_guard<std::mutex> lock(mutex);
      auto it = kernels.find(key);
      if (it != kernels.end()) k = it->second;
    }
    // The common call ends here. A failed launch (a thread with no CUDA context yet, say) goes on
    // to Triton's launcher, which sets one up, or raises the driver's error.
    if (k && k->function && cu_launch(*k, grid, out, x, g, coef, c, layout)) return;
    if (k) ours = false;  // known, and not for the C++ to launch (or the launch failed)
  }
  // Triton's launcher; for CUDA tensors it hands the compiled kernel back (or an empty one, which
  // leaves every launch of this key with Triton).
  Kernel k = python_launch({out, x, g_or_none, coef, c, backward, is_result, key.normal, key.unit, key.width > 0,
                            config, layout, grid});
  if (!ours) return;
  std::lock_guard<std::mutex> lock(mutex);
  kernels[key] = k;
}

void forget() {
  std::lock_guard<std::mutex> lock(mutex);
  tables.clear();
  kernels.clear();
}

// ---- the ops' kernels for CUDA tensors (and CPU tensors under TRITON_INTERPRET=1) ---------------

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

void configure(const std::array<int64_t, 3>& bucket_bounds, int moderate) {
  std::lock_guard<std::mutex> lock(mutex);
  buckets = bucket_bounds;
  moderate_lo = std::ldexp(1.0, -moderate);
  moderate_hi = std::ldexp(1.0, moderate);
}

}  // namespace fastelu
