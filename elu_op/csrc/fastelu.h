// What fastelu's C++ files share, one job a file. They are compiled apart, in parallel, so that the
// first import (which builds them) waits for the slowest one rather than for all in a row:
//   checks.cpp   the ops' checks, made before anything is written
//   layouts.cpp  how a launch walks a view
//   launch.cpp   every other decision of a launch, the compiled kernels, and the launch
//   outputs.cpp  the ops' kernels: checks, the output allocated as aten does, the launch
//   ops.cpp      which kernel serves which dispatch key, and autograd
//   module.cpp   the Python module: setup, the bindings, and the calls back into Python
// This header includes only ATen's Tensor, so that each file pays for the headers it needs.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include <ATen/core/Tensor.h>

namespace fastelu {

using at::Tensor;

// ---- checks (checks.cpp), all made before anything is written ----------------------------------
struct Coefs {
  double alpha, scale, input_scale;
};

extern const char* const kNegativeSlopeError;
void check_elu(const Tensor& self, const Coefs& c, bool inplace);
void check_backward(const Tensor& grad_output, const Coefs& c, bool is_result, const Tensor& s);

// ---- launch decisions (launch.cpp) --------------------------------------------------------------

struct Config {
  int64_t block = 0, warps = 0;
};

double negcoef(double alpha, double scale, bool float64);
bool normal_math(bool float16, bool backward, bool is_result, const Coefs& c);
int width(int64_t n, int64_t extent, int64_t block);
Config config_for(int64_t device, bool backward, int64_t itemsize, int64_t n);

// ---- layouts (layouts.cpp) ----------------------------------------------------------------------

// elu_kernel's view: up to kDims dimensions, each tensor (out, x, g) with its own strides.
constexpr int kDims = 4;

struct Dim {
  int64_t size;
  std::array<int64_t, 3> strides;  // out, x, g
};

// What elu_kernel reads of a view: its sizes and strides, the tile's columns (0: flat arrays), its
// dimensions, which tensors step by 1 along the columns (along the rows, aligned, for the
// transposed ones), their alignment, and which are read or written along the tile's rows (their
// smallest stride is there).
struct Layout {
  std::array<int64_t, 4 * kDims> params{};  // kernel.LAYOUT: size0..3, then out's, x's and g's strides
  int64_t block = 0;  // elements a tile
  int64_t cols = 0;
  int dims = 0;
  int unit = 0;
  int align = 1;
  int trans = 0;
  int64_t extent = 0;  // one past the largest offset of any of the tensors
};

// out, x and g's dimensions as the kernel steps over them; none where they are flat arrays.
std::vector<Dim> view_dims(const Tensor& out, const Tensor& x, const Tensor& g);
// dims (at most kDims of them) as elu_kernel takes them, in tiles of `block` elements or more.
Layout layout_of(std::vector<Dim> dims, int64_t block, int64_t itemsize);
// The layout run() gives a launch over out, x and g in tiles of `block` elements; none where they
// are flat arrays, or have more than kDims dimensions (aten's kernel takes those).
std::optional<Layout> view_layout(const Tensor& out, const Tensor& x, const Tensor& g, int64_t block);
int64_t grid_of(const Layout& l, int64_t n, int64_t block);

// ---- a launch (launch.cpp): elu_kernel's parameters by their names in kernel.PARAMS ------------

// A tensor parameter: Triton is passed the tensor, the driver its address.
struct TensorArg {
  const Tensor* tensor;
  uint64_t address;
};
// n: Triton types it by its value, 32 or 64 bits; the compiled kernel says which (Kernel::n64).
struct Count {
  int64_t n64;
  int32_t n32;
};

inline constexpr const char* kLayoutNames[4 * kDims] = {
    "size0", "size1", "size2", "size3", "out_s0", "out_s1", "out_s2", "out_s3",
    "x_s0",  "x_s1",  "x_s2",  "x_s3",  "g_s0",   "g_s1",   "g_s2",   "g_s3"};

// elu_kernel's runtime parameters.
struct Args {
  TensorArg out, x, g;  // g is x for the forward, which does not read it
  Count n;
  double negcoef, scale, input_scale;
  std::array<int64_t, 4 * kDims> layout;
  // Each by its name, in kernel.PARAMS's order: Triton is passed them by name (module.cpp), the
  // driver in this order (launch.cpp). tests/test_params.py checks the names and order.
  template <typename F>
  constexpr void each(F&& f) const {
    f("out_ptr", out), f("x_ptr", x), f("g_ptr", g), f("n", n);
    f("negcoef", negcoef), f("scale", scale), f("input_scale", input_scale);
    for (int i = 0; i < 4 * kDims; i++) f(kLayoutNames[i], layout[i]);
  }
};

// Spec::flags: elu_kernel's boolean constexprs, a bit each.
enum Flag : int64_t { kBackward = 1, kIsResult = 2, kInt64 = 4, kNormalExp = 8, kUnitInput = 16 };

// elu_kernel's constexprs, and all else a compiled kernel specialises on: the compiled kernels'
// key. int64_t fields only: the bytes compare and hash, with no padding, whatever is added.
struct Spec {
  int64_t device = -1, dtype = 0, n64 = 0, warps = 0;
  int64_t block = 0, flags = 0, cols = 0, dims = 0, unit = 0, align = 1, trans = 0;
  // The constexprs by name, in kernel.PARAMS's order (tests/test_params.py checks them).
  template <typename F>
  void each(F&& f) const {
    f("BLOCK", block), f("BACKWARD", bool(flags & kBackward)), f("IS_RESULT", bool(flags & kIsResult));
    f("INT64", bool(flags & kInt64)), f("NORMAL_EXP", bool(flags & kNormalExp));
    f("UNIT_INPUT", bool(flags & kUnitInput)), f("COLS", cols), f("DIMS", dims), f("UNIT", unit);
    f("ALIGN", align), f("TRANS", trans);
  }
  bool operator==(const Spec& o) const { return std::memcmp(this, &o, sizeof o) == 0; }
};
static_assert(std::has_unique_object_representations_v<Spec>, "Spec's bytes must be its value");

// One launch of elu_kernel, every decision made: handed to Triton's launcher (launch.py's run())
// where the C++ does not launch it itself.
struct Launch {
  Args args;
  Spec spec;
  int64_t grid;
};

// A compiled elu_kernel the C++ launches itself. function == nullptr: one that stays with Triton's
// launcher (it needs scratch memory, clusters, or parameters other than the ones passed).
struct Kernel {
  void* function = nullptr;  // CUfunction
  unsigned threads = 0, shared = 0;
  int extra = 0;  // pointer parameters Triton appends (scratch buffers, unused: passed as null)
  bool n64 = false;  // n is a 64-bit parameter
};
constexpr int kMaxExtra = 8;

// How many parameters Args::each passes (the driver's list holds them, then Triton's extra ones).
constexpr int arg_count() {
  int n = 0;
  Args{}.each([&n](const char*, const auto&) { n++; });
  return n;
}

// Runs elu_kernel over out, x and g (undefined for the forward); config: the device's table's
// unless given.
void run(const Tensor& out, const Tensor& x, const Tensor& g_or_none, const Coefs& c, bool is_result,
         Config config = {});
void configure(const std::array<int64_t, 3>& bucket_bounds, int moderate);
void forget();

// ---- the ops' kernels (outputs.cpp): CUDA tensors (and CPU tensors, interpreted), and aten's
// kernels after the same checks for every other device ----------------------------------------
Tensor elu_kernel(const Tensor& self, double alpha, double scale, double input_scale);
void elu_inplace_kernel(Tensor& self, double alpha, double scale, double input_scale);
Tensor elu_backward_kernel(const Tensor& grad_output, double alpha, double scale, double input_scale, bool is_result,
                           const Tensor& self_or_result);
Tensor elu_aten(const Tensor& self, double alpha, double scale, double input_scale);
void elu_inplace_aten(Tensor& self, double alpha, double scale, double input_scale);
Tensor elu_backward_aten(const Tensor& grad_output, double alpha, double scale, double input_scale, bool is_result,
                         const Tensor& self_or_result);

// ---- ops.cpp ----------------------------------------------------------------------------------
void route_aten(bool on);  // enable(): aten's elu, elu_ and elu_backward on CUDA tensors served by fastelu's kernels
void interpret_cpu(bool on);  // TRITON_INTERPRET=1: CPU tensors run the kernel, interpreted
// The ops through the dispatcher's full path.
Tensor call_elu(const Tensor& self, double alpha, double scale, double input_scale);
void call_elu_(Tensor& self, double alpha, double scale, double input_scale);

// ---- the calls into Python (module.cpp), each taking the GIL -----------------------------------
// configs.table(device): a configuration per direction (forward, backward), element size (2, 4, 8
// bytes) and size bucket.
using Table = std::array<std::array<std::array<Config, 4>, 3>, 2>;
Table python_table(int64_t device);
// launch.py's run(): Triton launches; for CUDA tensors, the compiled kernel comes back for the C++
// to launch from then on (an empty Kernel: Triton's launcher keeps it).
Kernel python_launch(const Launch& launch);
// True while a profiler hooks Triton's launches; read without the GIL.
bool hooked();

}  // namespace fastelu
