// Every decision of a launch but its layout (layouts.cpp), the compiled kernels, and the launch.
//
// At 4096 elements a call is all overhead, and a dispatcher trip into a Python kernel costs more
// than the whole of aten's elu (benchmarks/studies/results/*_calls.md). So a call stays in C++ from the dispatcher
// to cuLaunchKernel, and this file owns what a launch needs: the size bucket, the offset width,
// the coefficients, and the compiled kernels. Python owns the rest, in one direction (module.cpp
// calls it): configs.py the launch table of a device (asked once per device), launch.py the
// launches left to Triton's own launcher (the first of each kernel, which compiles it and hands it
// back here; CPU tensors under TRITON_INTERPRET=1; unaligned tensors; profiler hooks).

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

// ATen's operators' declarations only (the *_ops.h headers), not the whole ATen API: the first
// import compiles this file, and ATen/ATen.h alone took longer than all of it.
#include <c10/core/DispatchKeySet.h>  // which the *_ops.h headers use, and do not include

#include <ATen/ops/elu_backward_ops.h>
#include <ATen/ops/elu_ops.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include "fastelu.h"

namespace fastelu {

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

// The compiled kernels' key: Spec's words, mixed (cheaper, on every call, than hashing its bytes).
struct SpecHash {
  size_t operator()(const Spec& s) const {
    std::array<int64_t, sizeof(Spec) / sizeof(int64_t)> words;
    std::memcpy(words.data(), &s, sizeof s);
    size_t h = 0;
    for (int64_t w : words) h = (h ^ static_cast<size_t>(w)) * 1099511628211ull;
    return h;
  }
};

std::mutex mutex;  // guards what follows: written on first use, read by every thread
std::unordered_map<int64_t, Table> tables;  // by device (-1: the CPU, interpreted)
std::unordered_map<Spec, Kernel, SpecHash> kernels;
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

// The driver's parameter list: Args's addresses in order, n as the compiled kernel takes it.
struct DriverParams {
  void** params;
  bool n64;
  int i = 0;
  void operator()(const char*, const TensorArg& t) { params[i++] = const_cast<uint64_t*>(&t.address); }
  void operator()(const char*, const Count& n) {
    params[i++] = n64 ? const_cast<int64_t*>(&n.n64) : static_cast<void*>(const_cast<int32_t*>(&n.n32));
  }
  template <typename T>
  void operator()(const char*, const T& v) { params[i++] = const_cast<T*>(&v); }
};

bool cu_launch(const Kernel& k, const Launch& l) {
  auto launch_kernel = cu_launch_kernel();
  if (launch_kernel == nullptr) return false;
  void* stream = nullptr;
  auto device = l.args.out.tensor->device();
  if (!stream_handle(c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStream(device), &stream, 0))
    return false;
  uint64_t null_pointer = 0;
  void* params[arg_count() + kMaxExtra];
  DriverParams fill{params, k.n64};
  l.args.each(fill);
  for (int i = 0; i < k.extra; i++) params[fill.i++] = &null_pointer;
  return launch_kernel(k.function, static_cast<unsigned>(l.grid), 1, 1, k.threads, 1, 1, k.shared, stream, params,
                       nullptr) == 0;
}

uint64_t address(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()); }

int64_t dtype_code(at::ScalarType t) { return static_cast<int64_t>(t); }

// Runs elu_kernel over out, x and g (undefined for the forward), tensors of one shape in any
// layouts (out may be x), in one pass: flat arrays where all three are dense and laid out alike,
// else the view itself (layouts.cpp). config: the device's table's unless given.
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
  bool float64 = out.scalar_type() == at::kDouble;
  int64_t device = out.is_cuda() ? out.get_device() : -1;
  c10::OptionalDeviceGuard guard;
  if (device >= 0) guard.reset_device(out.device());
  if (config.block == 0) config = config_for(device, backward, out.element_size(), n);
  Layout layout = flat ? Layout{} : layout_of(dims, config.block, out.element_size());
  if (!flat) config.block = layout.block;
  // The transposing tile's exchange wants four warps or more: with the tables' two (a small 16-bit
  // bucket on the H100) 2**24 ran 10-15% slower (benchmarks/studies/results/NVIDIA_H100_80GB_HBM3_layouts.md).
  if (layout.trans) config.warps = std::max<int64_t>(config.warps, 4);
  is_result = backward && is_result;
  int offsets = width(n, layout.extent, config.block);
  Launch l{{{&out, address(out)}, {&x, address(x)}, {&g, address(g)}, {n, static_cast<int32_t>(n)},
            negcoef(c.alpha, c.scale, float64), c.scale, c.input_scale, layout.params},
           {device, dtype_code(out.scalar_type()), offsets == 2, config.warps, config.block,
            (backward ? kBackward : 0) | (is_result ? kIsResult : 0) | (offsets > 0 ? kInt64 : 0) |
                (normal_math(out.scalar_type() == at::kHalf, backward, is_result, c) ? kNormalExp : 0) |
                (unit_input(c.input_scale, float64) ? kUnitInput : 0),
            layout.cols, layout.dims, layout.unit, layout.align, layout.trans},
           grid_of(layout, n, config.block)};
  bool ours = device >= 0 && l.args.out.address % 16 == 0 && l.args.x.address % 16 == 0 &&
              l.args.g.address % 16 == 0 && !hooked();
  if (ours) {
    std::optional<Kernel> k;
    {
      std::lock_guard<std::mutex> lock(mutex);
      auto it = kernels.find(l.spec);
      if (it != kernels.end()) k = it->second;
    }
    // The common call ends here. A failed launch (a thread with no CUDA context yet, say) goes on
    // to Triton's launcher, which sets one up, or raises the driver's error.
    if (k && k->function && cu_launch(*k, l)) return;
    if (k) ours = false;  // known, and not for the C++ to launch (or the launch failed)
  }
  // Triton's launcher; for CUDA tensors it hands the compiled kernel back (or an empty one, which
  // leaves every launch of this key with Triton).
  Kernel k = python_launch(l);
  if (!ours) return;
  std::lock_guard<std::mutex> lock(mutex);
  kernels[l.spec] = k;
}

void forget() {
  std::lock_guard<std::mutex> lock(mutex);
  tables.clear();
  kernels.clear();
}

void configure(const std::array<int64_t, 3>& bucket_bounds, int moderate) {
  std::lock_guard<std::mutex> lock(mutex);
  buckets = bucket_bounds;
  moderate_lo = std::ldexp(1.0, -moderate);
  moderate_hi = std::ldexp(1.0, moderate);
}

}  // namespace fastelu
