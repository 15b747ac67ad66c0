// Layouts: how a launch walks any view of out, x and g in one pass, never a copy (elu_kernel's
// COLS, DIMS, UNIT, ALIGN and TRANS, and its sizes and strides).

#include <algorithm>
#include <vector>

#include "fastelu.h"

namespace fastelu {

constexpr int64_t kMinTile = 2048, kTransTile = 4096;

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
    // which ran faster (benchmarks/studies/results/NVIDIA_H200_layouts.md).
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

}  // namespace fastelu
