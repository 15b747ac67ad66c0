// fastelu's ops in C++: every decision of a launch and the launch itself, the checks, the
// kernels for each dispatch key, and autograd (Autograd and ADInplaceOrView kernels, formulas).
//
// At 4096 elements a call is all overhead, and a dispatcher trip into a Python kernel costs more
// than the whole of aten's elu (benchmarks/results/). So a call stays in C++ from the dispatcher
// to cuLaunchKernel, and this file owns what a launch needs: the checks, layouts, the size
// bucket, the offset width, the coefficients, and the compiled kernels. Python owns the rest, in
// one direction: configs.py the launch table of a device (asked once per device), launch.py the
// launches left to Triton's own launcher (the first of each kernel, which compiles it and hands it
// back here; CPU tensors under TRITON_INTERPRET=1; unaligned tensors; profiler hooks).

#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <ATen/MemoryOverlap.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/extension.h>
#include <torch/library.h>

namespace {

namespace py = pybind11;
using at::Tensor;

// ---- checks, all made before anything is written ----------------------------------------------

// Also raised for a negative input_scale, which PyTorch lets through: the result's sign then no
// longer tells which branch the input took, and the gradient would be silently wrong.
constexpr const char* kNegativeSlopeError =
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

void check_dtype(const Tensor& t, const char* name) {
  auto d = t.scalar_type();
  TORCH_CHECK_TYPE(d == at::kFloat || d == at::kHalf || d == at::kBFloat16 || d == at::kDouble, "fastelu: ", name,
                   " has dtype ", dtype_name(d), ", but only float32, float16, bfloat16 and float64 are supported");
}

void check_inplace(const Tensor& self) {
  check_dtype(self, "input");
  at::assert_no_internal_overlap(self);  // aten's own message
}

void check_backward(const Tensor& grad_output, double alpha, double input_scale, bool is_result, const Tensor& s) {
  check_dtype(grad_output, "grad_output");
  check_dtype(s, "self_or_result");
  TORCH_CHECK_TYPE(grad_output.scalar_type() == s.scalar_type(), "fastelu: grad_output has dtype ",
                   dtype_name(grad_output.scalar_type()), " but self_or_result has ", dtype_name(s.scalar_type()),
                   "; they must match");
  // sym_sizes: under torch.compile the fake kernels check symbolic shapes, which sizes() would
  // pin to the traced values (a recompile for every new batch size).
  TORCH_CHECK_VALUE(grad_output.sym_sizes() == s.sym_sizes(), "fastelu: grad_output has shape ",
                    shape_name(grad_output), " but self_or_result has ", shape_name(s), "; they must match");
  TORCH_CHECK_VALUE(grad_output.device() == s.device(), "fastelu: grad_output is on ", grad_output.device(),
                    " but self_or_result is on ", s.device());
  TORCH_CHECK(!(is_result && (alpha < 0 || input_scale < 0)), kNegativeSlopeError);
}

// ---- launch decisions -------------------------------------------------------------------------

struct Coefs {
  double alpha, scale, input_scale;
};

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

// 2**-MODERATE and 2**MODERATE (coefficients.MODERATE, set by setup). float16 results, and float16
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

struct Config {
  int64_t block = 0, warps = 0;
};

// Largest element count whose offsets (plus one block of slack) stay in int32.
constexpr int64_t kInt32Safe = (int64_t(1) << 31) - 1;

// How elu_kernel addresses n elements in blocks of `block`, whose offsets reach `extent`: 0 with
// int32 offsets, 1 with int64 offsets and a 32-bit n, 2 with a 64-bit n (Triton types an n past
// int32 as i64: another kernel).
int width(int64_t n, int64_t extent, int64_t block) {
  return n > kInt32Safe ? 2 : std::max(n, extent) <= kInt32Safe - block ? 0 : 1;
}

// ---- layouts: one pass over any view, never a copy ------------------------------------------

// elu_kernel's view: up to kDims dimensions, each tensor (out, x, g) with its own strides.
constexpr int kDims = 4;
constexpr int64_t kMinTile = 2048;

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

// What elu_kernel reads of a view: its sizes and strides (elu_kernel's sixteen integers), the
// tile's columns (0: flat arrays), its dimensions, which tensors step by 1 along the columns, and
// their alignment.
struct Layout {
  std::array<int64_t, 4 * kDims> params{};  // size0..3, then out's, x's and g's strides
  int64_t block = 0;  // elements a tile
  int64_t cols = 0;
  int dims = 0;
  int unit = 0;
  int align = 1;
  int64_t extent = 0;  // one past the largest offset of any of the tensors
};

// dims (at most kDims of them) as elu_kernel takes them, in tiles of `block` elements or more.
Layout layout_of(const std::vector<Dim>& dims, int64_t block, int64_t itemsize) {
  Layout l;
  l.dims = static_cast<int>(dims.size());
  int pad = kDims - l.dims;  // outer dimensions of size 1
  for (int d = 0; d < kDims; d++) {
    Dim dim = d < pad ? Dim{1, {0, 0, 0}} : dims[d - pad];
    l.params[d] = dim.size;
    for (int i = 0; i < 3; i++) l.params[kDims * (i + 1) + d] = dim.strides[i];
  }
  const Dim& inner = dims.back();
  for (int i = 0; i < 3; i++) l.unit |= (inner.strides[i] == 1) << i;
  // Where every tensor loads and stores vectors, a tile's index arithmetic (a few divisions a
  // program) is spread over at least kMinTile elements; strided columns keep the table's block,
  // which ran faster (benchmarks/results/NVIDIA_H200_layouts.md).
  l.block = l.unit == 7 ? std::max(block, kMinTile) : block;
  l.cols = 1;
  while (l.cols < inner.size && l.cols < l.block) l.cols *= 2;
  int64_t vector = 16 / itemsize;
  bool aligned = inner.size % vector == 0;
  std::array<int64_t, 3> extent{1, 1, 1};
  for (const Dim& d : dims)
    for (int i = 0; i < 3; i++) {
      if (&d != &inner) aligned = aligned && d.strides[i] % vector == 0;
      extent[i] += (d.size - 1) * d.strides[i];
    }
  l.align = aligned ? static_cast<int>(vector) : 1;
  l.extent = *std::max_element(extent.begin(), extent.end());
  return l;
}

int64_t grid_of(const Layout& l, int64_t n, int64_t block) {
  if (l.cols == 0) return (n + block - 1) / block;
  int64_t rows = l.params[0] * l.params[1] * l.params[2], per_tile = block / l.cols;
  return (l.params[3] + l.cols - 1) / l.cols * ((rows + per_tile - 1) / per_tile);
}

// A compiled elu_kernel the C++ launches itself. function == nullptr: one that stays with Triton's
// launcher (it needs scratch memory, clusters, or parameters other than the ones passed below).
struct Kernel {
  void* function = nullptr;  // CUfunction
  unsigned threads = 0, shared = 0;
  int extra = 0;  // pointer parameters Triton appends (scratch buffers, unused: passed as null)
  bool n64 = false;  // n is a 64-bit parameter
};
constexpr int kMaxExtra = 8;

enum Dtype { F32, F16, BF16, F64 };
Dtype dtype_of(at::ScalarType t) {
  return t == at::kFloat ? F32 : t == at::kHalf ? F16 : t == at::kBFloat16 ? BF16 : F64;  // after check_dtype
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
  int dims, unit_stride, align;
  bool operator==(const Key& o) const {
    return device == o.device && dtype == o.dtype && backward == o.backward && is_result == o.is_result &&
           config.block == o.config.block && config.warps == o.config.warps && width == o.width &&
           normal == o.normal && unit == o.unit && cols == o.cols && dims == o.dims &&
           unit_stride == o.unit_stride && align == o.align;
  }
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    int64_t flags = ((((k.device * 4 + k.dtype) * 4 + k.backward * 2 + k.is_result) * 3 + k.width) * 2 + k.normal) *
                        2 + k.unit;
    int64_t view = ((k.cols * 5 + k.dims) * 8 + k.unit_stride) * 16 + k.align;
    return std::hash<int64_t>()((flags << 40) ^ (view << 24) ^ (k.config.block << 8) ^ k.config.warps);
  }
};

// A device's launch table: a configuration per direction (forward, backward), element size (2, 4,
// 8 bytes) and size bucket.
using Table = std::array<std::array<std::array<Config, 4>, 3>, 2>;

struct Python {
  py::object launch;  // the module elu_op.launch (its run() is looked up at each call, so tests can wrap it)
  py::object table;   // configs.table(device) -> {direction: {itemsize: ((block, warps),) * 4}}
};

std::mutex mutex;  // guards what follows: written on first use, read by every thread
std::unordered_map<int64_t, Table> tables;  // by device (-1: the CPU, interpreted)
std::unordered_map<Key, Kernel, KeyHash> kernels;
std::array<int64_t, 3> buckets{};  // configs.BUCKETS: the size buckets' upper bounds
Python* python = nullptr;  // never freed: destroying Python objects at exit would need the GIL
// The `calls` lists of Triton's launch hooks (profilers such as Proton), read without the GIL.
PyObject* hook_lists[2] = {nullptr, nullptr};

Config config_for(int64_t device, bool backward, int64_t itemsize, int64_t n) {
  int size = itemsize == 2 ? 0 : itemsize == 4 ? 1 : 2;
  int bucket = n <= buckets[0] ? 0 : n <= buckets[1] ? 1 : n <= buckets[2] ? 2 : 3;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = tables.find(device);
    if (it != tables.end()) return it->second[backward][size][bucket];
  }
  Table table;
  {
    py::gil_scoped_acquire gil;
    py::dict all = python->table(device);
    for (int d = 0; d < 2; d++) {
      py::dict sizes = all[d ? "backward" : "forward"];
      for (int s = 0; s < 3; s++) {
        auto rows = sizes[py::int_(int64_t(2) << s)].cast<std::vector<std::pair<int64_t, int64_t>>>();
        TORCH_CHECK(rows.size() == 4, "configs.table: four size buckets expected");
        for (int b = 0; b < 4; b++) table[d][s][b] = Config{rows[b].first, rows[b].second};
      }
    }
  }
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

// True while a profiler hooks Triton's launches: they then go through Triton's launcher, which
// reports them. A list's length is one aligned word, read atomically, so this takes no GIL.
bool hooked() {
  for (PyObject* list : hook_lists)
    if (list && __atomic_load_n(&reinterpret_cast<PyVarObject*>(list)->ob_size, __ATOMIC_RELAXED)) return true;
  return false;
}

bool aligned(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; }

bool cu_launch(const Kernel& k, int64_t grid, const Tensor& out, const Tensor& x, const Tensor& g, double coef,
               const Coefs& c, const Layout& l) {
  auto launch_kernel = cu_launch_kernel();
  if (launch_kernel == nullptr) return false;
  void* stream = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStream(out.device()).native_handle();
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
void run(const Tensor& out, const Tensor& x, const Tensor& g_or_none, const Coefs& c, bool is_result,
         Config config = {}) {
  int64_t n = out.numel();
  if (n == 0) return;
  bool backward = g_or_none.defined();
  const Tensor& g = backward ? g_or_none : x;
  // Dense and laid out alike (the common call): flat arrays, with no collapse to work out.
  bool flat = x.is_non_overlapping_and_dense() && out.strides() == x.strides() && g.strides() == x.strides();
  std::vector<Dim> dims;
  if (!flat) {
    dims = collapse(out, x, g);
    flat = dims.size() <= 1 && (dims.empty() || dims[0].strides == std::array<int64_t, 3>{1, 1, 1});
  }
  if (dims.size() > kDims) {  // rare: one launch for each index of the outermost dimension
    const Dim outer = dims.front();
    dims.erase(dims.begin());
    std::vector<int64_t> sizes, strides[3];
    for (const Dim& d : dims) {
      sizes.push_back(d.size);
      for (int i = 0; i < 3; i++) strides[i].push_back(d.strides[i]);
    }
    auto part = [&](const Tensor& t, int i, int64_t index) {
      return t.as_strided(sizes, strides[i], t.storage_offset() + index * outer.strides[i]);
    };
    for (int64_t index = 0; index < outer.size; index++)
      run(part(out, 0, index), part(x, 1, index), backward ? part(g, 2, index) : Tensor(), c, is_result, config);
    return;
  }
  double coef = negcoef(c.alpha, c.scale, out.scalar_type() == at::kDouble);
  int64_t device = out.is_cuda() ? out.get_device() : -1;
  c10::OptionalDeviceGuard guard;
  if (device >= 0) guard.reset_device(out.device());
  if (config.block == 0) config = config_for(device, backward, out.element_size(), n);
  Layout layout = flat ? Layout{} : layout_of(dims, config.block, out.element_size());
  if (!flat) config.block = layout.block;
  int64_t grid = grid_of(layout, n, config.block);
  is_result = backward && is_result;
  Key key{device, dtype_of(out.scalar_type()), backward, is_result, config, width(n, layout.extent, config.block),
          normal_math(out.scalar_type() == at::kHalf, backward, is_result, c),
          unit_input(c.input_scale, out.scalar_type() == at::kDouble), layout.cols, layout.dims, layout.unit,
          layout.align};
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
  py::gil_scoped_acquire gil;
  py::object handed = python->launch.attr("run")(
      out, x, backward ? py::cast(g) : py::none(), n, coef, c.scale, c.input_scale, backward, is_result, key.normal,
      key.unit, config.block, config.warps, key.width > 0,
      std::vector<int64_t>(layout.params.begin(), layout.params.end()), layout.cols, layout.dims, layout.unit, layout.align, grid);
  if (!ours) return;
  Kernel k;  // stays empty (Triton's launcher from now on) if launch.py hands back None
  if (!handed.is_none()) {
    auto t = handed.cast<std::tuple<uintptr_t, unsigned, unsigned, int, bool>>();
    k = Kernel{reinterpret_cast<void*>(std::get<0>(t)), std::get<1>(t), std::get<2>(t), std::get<3>(t),
               std::get<4>(t)};
    if (k.extra < 0 || k.extra > kMaxExtra) k = Kernel{};
  }
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
// input), as TensorIterator lays it out: a's layout where the inputs share one dense layout, else
// dense in the order of a's strides, ties and broadcast (stride 0) dimensions decided by b's
// (TensorIteratorBase::reorder_dimensions).
Tensor empty_like_aten(const Tensor& a, const Tensor& b) {
  auto options = a.options();
  if (a.is_contiguous() && (!b.defined() || b.is_contiguous())) return at::empty(a.sizes(), options);
  if (a.is_non_overlapping_and_dense() && (!b.defined() || b.strides() == a.strides())) {
    auto channels_last = a.dim() == 4 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::ChannelsLast3d;
    bool both = a.dim() >= 4 && a.dim() <= 5 && a.is_contiguous(channels_last) &&
                (!b.defined() || b.is_contiguous(channels_last));
    return both ? at::empty(a.sizes(), options.memory_format(channels_last))
                : at::empty_strided(a.sizes(), a.strides(), options);
  }
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
  return at::empty_strided(a.sizes(), strides, options);
}

Tensor elu_kernel(const Tensor& self, double alpha, double scale, double input_scale) {
  check_dtype(self, "input");
  Tensor out = empty_like_aten(self, Tensor());
  run(out, self, Tensor(), {alpha, scale, input_scale}, false);
  return out;
}

void elu_inplace_kernel(Tensor& self, double alpha, double scale, double input_scale) {
  check_inplace(self);  // no two elements share memory: all that writing in place needs
  run(self, self, Tensor(), {alpha, scale, input_scale}, false);
}

Tensor elu_backward_kernel(const Tensor& grad_output, double alpha, double scale, double input_scale, bool is_result,
                           const Tensor& self_or_result) {
  check_backward(grad_output, alpha, input_scale, is_result, self_or_result);
  Tensor out = empty_like_aten(grad_output, self_or_result);
  run(out, self_or_result, grad_output, {alpha, scale, input_scale}, is_result);
  return out;
}

// ---- any other device, and the CPU without the interpreter: aten's kernels, after our checks ----

Tensor elu_aten(const Tensor& self, double alpha, double scale, double input_scale) {
  check_dtype(self, "input");
  return at::elu(self, alpha, scale, input_scale);
}

void elu_inplace_aten(Tensor& self, double alpha, double scale, double input_scale) {
  check_inplace(self);
  at::elu_(self, alpha, scale, input_scale);
}

Tensor elu_backward_aten(const Tensor& grad_output, double alpha, double scale, double input_scale, bool is_result,
                         const Tensor& self_or_result) {
  check_backward(grad_output, alpha, input_scale, is_result, self_or_result);
  return at::elu_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result);
}

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

std::unique_ptr<torch::Library> cpu_kernels;  // under TRITON_INTERPRET=1 only

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

void setup(py::object launch_module, py::object table, py::object hooks, std::vector<int64_t> bucket_bounds,
           int moderate, bool interpret) {
  TORCH_CHECK(bucket_bounds.size() == 3, "setup: three size bucket bounds expected");
  std::lock_guard<std::mutex> lock(mutex);
  std::copy(bucket_bounds.begin(), bucket_bounds.end(), buckets.begin());
  moderate_lo = std::ldexp(1.0, -moderate);
  moderate_hi = std::ldexp(1.0, moderate);
  python = new Python{launch_module, table};
  for (int i = 0; i < 2; i++) {
    py::object list = hooks[py::int_(i)];
    hook_lists[i] = list.is_none() ? nullptr : list.inc_ref().ptr();  // kept for good, as python
  }
  if (interpret && !cpu_kernels) {
    cpu_kernels = std::make_unique<torch::Library>(torch::Library::IMPL, "fastelu", c10::DispatchKey::CPU, __FILE__,
                                                   __LINE__);
    cpu_kernels->impl("elu", TORCH_FN(elu_kernel));
    cpu_kernels->impl("elu_", TORCH_FN(elu_inplace_kernel));
    cpu_kernels->impl("elu_backward", TORCH_FN(elu_backward_kernel));
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(fastelu, CUDA, m) {
  m.impl("elu", &elu_kernel);
  m.impl("elu_", &elu_inplace_kernel);
  m.impl("elu_backward", &elu_backward_kernel);
}

TORCH_LIBRARY_IMPL(fastelu, CompositeExplicitAutograd, m) {
  m.impl("elu", &elu_aten);
  m.impl("elu_", &elu_inplace_aten);
  m.impl("elu_backward", &elu_backward_aten);
}

TORCH_LIBRARY_IMPL(fastelu, Autograd, m) {
  m.impl("elu", &elu_autograd);
  m.impl("elu_", &elu_inplace_autograd);
  m.impl("elu_backward", &elu_backward_autograd);
}

TORCH_LIBRARY_IMPL(fastelu, ADInplaceOrView, m) { m.impl("elu_", &elu_inplace_ad_inplace_or_view); }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("setup", &setup,
        "Once, at import: the module launch.py, configs.table, Triton's launch-hook lists, the size buckets, "
        "coefficients.MODERATE, and whether CPU tensors run the kernel under Triton's interpreter.");
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
  // Checks for the fake kernels, which see the same errors as the real ones.
  m.def("check", [](const Tensor& self, bool inplace) { inplace ? check_inplace(self) : check_dtype(self, "input"); });
  m.def("check_backward", &check_backward);
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
    return elu_op().call(self, alpha, scale, input_scale);
  }, py::call_guard<py::gil_scoped_release>());
  m.def("elu_", [](Tensor& self, double alpha, double scale, double input_scale) {
    elu_inplace_op().call(self, alpha, scale, input_scale);
  }, py::call_guard<py::gil_scoped_release>());
}
