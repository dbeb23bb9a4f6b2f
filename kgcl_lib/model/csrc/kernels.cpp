// Compiled CPU kernels for kgcl (loaded by kgcl_lib/model/kernels.py with torch.utils.cpp_extension).
//
// KGCN's per-step work is many tiny gathers over a small receptive field; in eager torch each
// one is a separate pass over memory plus dispatch and autograd bookkeeping.  These kernels fuse
// them per batch row so the field stays in cache.  Every kernel has a pure-torch twin in
// kgcl_lib/model/fast.py and kgcl_lib/model/table_adam.py, and the tests check the two against each other.
//
// Layout conventions (see kgcl_lib/model/fast.py):
//   field  int64[B, F]   heap layout: node p's K children sit at 1 + p*K .. p*K + K
//   w      [B, WW]       attention weight of node s's k-th edge at s*K + k (WW >= S*K)
//   tables [n, d]        row-major, contiguous
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

enum Act : int64_t { kNone = 0, kRelu = 1, kTanh = 2 };

// Scatter-add `rows` into a table [R, d] from many sources without atomics: each thread owns a
// range of table rows and visits every source, keeping only its own targets.
template <typename F>
void owned_rows(int64_t R, F&& body) {
  at::parallel_for(0, R, 1, [&](int64_t rb, int64_t re) { body(rb, re); });
}

// Dot product with 16 independent partial sums: a single running sum is a chain of dependent
// adds the compiler may not reorder (strict IEEE), ~4x slower than the vectorised form.
template <typename T>
inline T dot(const T* __restrict a, const T* __restrict b, int64_t d) {
  T acc[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 16 <= d; j += 16)
    for (int q = 0; q < 16; ++q) acc[q] += a[j + q] * b[j + q];
  T s = 0;
  for (; j < d; ++j) s += a[j] * b[j];
  for (int q = 0; q < 8; ++q) acc[q] += acc[q + 8];
  for (int q = 0; q < 4; ++q) acc[q] += acc[q + 4];
  return s + ((acc[0] + acc[1]) + (acc[2] + acc[3]));
}

#if defined(__AVX512F__)
// float: one 16-lane FMA chain and a shuffle-tree horizontal sum (the generic version's
// reduction compiles to ~15 dependent scalar adds per dot, the hot spot of tree_bag_bwd)
template <>
inline float dot<float>(const float* __restrict a, const float* __restrict b, int64_t d) {
  __m512 acc = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= d; j += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j), acc);
  float s = _mm512_reduce_add_ps(acc);
  for (; j < d; ++j) s += a[j] * b[j];
  return s;
}
#elif defined(__AVX2__) && defined(__FMA__)
template <>
inline float dot<float>(const float* __restrict a, const float* __restrict b, int64_t d) {
  __m256 acc = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= d; j += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), acc);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 0x1));
  float s = _mm_cvtss_f32(h);
  for (; j < d; ++j) s += a[j] * b[j];
  return s;
}
#endif

// y += a * x
template <typename T>
inline void axpy(T* __restrict y, T a, const T* __restrict x, int64_t d) {
  for (int64_t j = 0; j < d; ++j) y[j] += a * x[j];
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// edge_softmax: w[b, e] = scale * softmax over each group of K edges of ur[b, rel[b, e]].
//   ur [B, R'] (π(u, r) for every relation), rel int64[B, E] with E = S*K  ->  w [B, E]
torch::Tensor edge_softmax_fwd(torch::Tensor ur, torch::Tensor rel, int64_t K, double scale) {
  const int64_t B = rel.size(0), E = rel.size(1), R = ur.size(1);
  auto w = torch::empty({B, E}, ur.options());
  AT_DISPATCH_FLOATING_TYPES(ur.scalar_type(), "edge_softmax_fwd", [&] {
    const scalar_t* U = ur.data_ptr<scalar_t>();
    const int64_t* RL = rel.data_ptr<int64_t>();
    scalar_t* Wo = w.data_ptr<scalar_t>();
    at::parallel_for(0, B, 256, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const scalar_t* x = U + b * R;
        const int64_t* r = RL + b * E;
        scalar_t* o = Wo + b * E;
        for (int64_t g = 0; g < E; g += K) {
          scalar_t m = x[r[g]];
          for (int64_t k = 1; k < K; ++k) m = std::max(m, x[r[g + k]]);
          scalar_t z = 0;
          for (int64_t k = 0; k < K; ++k) {
            const scalar_t e = std::exp(x[r[g + k]] - m);
            o[g + k] = e;
            z += e;
          }
          const scalar_t inv = static_cast<scalar_t>(scale) / z;
          for (int64_t k = 0; k < K; ++k) o[g + k] *= inv;
        }
      }
    });
  });
  return w;
}

// d/d ur of Σ grad·w:  grad_ur[b, rel[b, j]] += w_j (g_j - Σ_k g_k w_k / scale)  per group.
torch::Tensor edge_softmax_bwd(torch::Tensor w, torch::Tensor rel, torch::Tensor grad, int64_t R, int64_t K,
                               double scale) {
  const int64_t B = rel.size(0), E = rel.size(1);
  auto gu = torch::zeros({B, R}, w.options());
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "edge_softmax_bwd", [&] {
    const scalar_t* Wt = w.data_ptr<scalar_t>();
    const int64_t* RL = rel.data_ptr<int64_t>();
    const scalar_t* G = grad.data_ptr<scalar_t>();
    scalar_t* GU = gu.data_ptr<scalar_t>();
    const scalar_t inv_scale = static_cast<scalar_t>(1.0 / scale);
    at::parallel_for(0, B, 256, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const scalar_t* wb = Wt + b * E;
        const scalar_t* gb = G + b * E;
        const int64_t* r = RL + b * E;
        scalar_t* out = GU + b * R;
        for (int64_t g = 0; g < E; g += K) {
          scalar_t dot = 0;
          for (int64_t k = 0; k < K; ++k) dot += gb[g + k] * wb[g + k];
          dot *= inv_scale;
          for (int64_t k = 0; k < K; ++k) out[r[g + k]] += wb[g + k] * (gb[g + k] - dot);
        }
      }
    });
  });
  return gu;
}

// ---------------------------------------------------------------------------------------------
// tree_bag: for the first S field nodes of every row,
//   out[b, s] = act( bias + self_tab[field[b, s]] + Σ_k w[b, s*K+k] · nbr_tab[field[b, 1+s*K+k]] )
// (self term only when self_tab is given; bias only when non-empty)  ->  out [B, S, d]
torch::Tensor tree_bag_fwd(torch::Tensor self_tab, torch::Tensor nbr_tab, torch::Tensor field, torch::Tensor w,
                           torch::Tensor bias, int64_t S, int64_t K, int64_t act) {
  const int64_t B = field.size(0), F = field.size(1), d = nbr_tab.size(1), WW = w.size(1);
  const bool has_self = self_tab.numel() > 0, has_bias = bias.numel() > 0;
  auto out = torch::empty({B, S, d}, nbr_tab.options());
  AT_DISPATCH_FLOATING_TYPES(nbr_tab.scalar_type(), "tree_bag_fwd", [&] {
    const scalar_t* NT = nbr_tab.data_ptr<scalar_t>();
    const scalar_t* ST = has_self ? self_tab.data_ptr<scalar_t>() : nullptr;
    const int64_t* FI = field.data_ptr<int64_t>();
    const scalar_t* Wt = w.data_ptr<scalar_t>();
    const scalar_t* BI = has_bias ? bias.data_ptr<scalar_t>() : nullptr;
    scalar_t* O = out.data_ptr<scalar_t>();
    at::parallel_for(0, B, 64, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t* f = FI + b * F;
        const scalar_t* wb = Wt + b * WW;
        for (int64_t s = 0; s < S; ++s) {
          scalar_t* o = O + (b * S + s) * d;
          if (BI) for (int64_t j = 0; j < d; ++j) o[j] = BI[j];
          else for (int64_t j = 0; j < d; ++j) o[j] = 0;
          if (ST) {
            const scalar_t* x = ST + f[s] * d;
            for (int64_t j = 0; j < d; ++j) o[j] += x[j];
          }
          for (int64_t k = 0; k < K; ++k) axpy(o, wb[s * K + k], NT + f[1 + s * K + k] * d, d);
          if (act == kRelu) for (int64_t j = 0; j < d; ++j) o[j] = o[j] > 0 ? o[j] : scalar_t(0);
          else if (act == kTanh) for (int64_t j = 0; j < d; ++j) o[j] = std::tanh(o[j]);
        }
      }
    });
  });
  return out;
}

// Backward of tree_bag given its output `out` (for the activation's derivative).
// Returns {grad_self, grad_nbr, grad_w, grad_bias}; a grad is undefined when not needed.
// shared: self_tab is nbr_tab (sum aggregator), and its gradient lands in grad_nbr.
std::vector<torch::Tensor> tree_bag_bwd(torch::Tensor self_tab, torch::Tensor nbr_tab, torch::Tensor field,
                                        torch::Tensor w, torch::Tensor out, torch::Tensor grad, int64_t S, int64_t K,
                                        int64_t act, bool shared, bool need_self, bool need_nbr, bool need_w,
                                        bool need_bias) {
  const int64_t B = field.size(0), F = field.size(1), d = nbr_tab.size(1), WW = w.size(1), R = nbr_tab.size(0);
  torch::Tensor g_self, g_nbr, g_w, g_bias;
  const bool self_in_nbr = shared && (need_self || need_nbr);
  if (need_nbr || self_in_nbr) g_nbr = torch::zeros_like(nbr_tab);
  if (need_self && !shared) g_self = torch::zeros_like(self_tab);
  if (need_w) g_w = torch::zeros_like(w);
  const int64_t nt = at::get_num_threads();
  if (nt == 1) {
    // One thread: a single pass per field node -- act', bias, dL/dw and both scatters -- with the
    // node's pre-activation gradient kept in a small local buffer instead of a [B, S, d] tensor.
    if (need_bias) g_bias = torch::zeros({d}, nbr_tab.options());
    AT_DISPATCH_FLOATING_TYPES(nbr_tab.scalar_type(), "tree_bag_bwd1", [&] {
      const scalar_t* NT = nbr_tab.data_ptr<scalar_t>();
      const int64_t* FI = field.data_ptr<int64_t>();
      const scalar_t* Wt = w.data_ptr<scalar_t>();
      const scalar_t* G = grad.data_ptr<scalar_t>();
      const scalar_t* H = out.data_ptr<scalar_t>();
      scalar_t* GW = need_w ? g_w.data_ptr<scalar_t>() : nullptr;
      scalar_t* GN = g_nbr.defined() ? g_nbr.data_ptr<scalar_t>() : nullptr;
      scalar_t* GS = g_self.defined() ? g_self.data_ptr<scalar_t>() : nullptr;
      scalar_t* GB = need_bias ? g_bias.data_ptr<scalar_t>() : nullptr;
      const bool add_self = shared && need_self && GN;
      std::vector<scalar_t> buf(d);
      scalar_t* gs = buf.data();
      for (int64_t b = 0; b < B; ++b) {
        const int64_t* f = FI + b * F;
        const scalar_t* wb = Wt + b * WW;
        for (int64_t s = 0; s < S; ++s) {
          const int64_t row = (b * S + s) * d;
          if (act == kRelu) for (int64_t j = 0; j < d; ++j) gs[j] = H[row + j] > 0 ? G[row + j] : scalar_t(0);
          else if (act == kTanh) for (int64_t j = 0; j < d; ++j) gs[j] = G[row + j] * (1 - H[row + j] * H[row + j]);
          else for (int64_t j = 0; j < d; ++j) gs[j] = G[row + j];
          if (GB) axpy(GB, scalar_t(1), gs, d);
          if (add_self) axpy(GN + f[s] * d, scalar_t(1), gs, d);
          if (GS) axpy(GS + f[s] * d, scalar_t(1), gs, d);
          for (int64_t k = 0; k < K; ++k) {
            const int64_t r = f[1 + s * K + k];
            if (GW) GW[b * WW + s * K + k] = dot<scalar_t>(gs, NT + r * d, d);
            if (GN) axpy(GN + r * d, wb[s * K + k], gs, d);
          }
        }
      }
    });
    return {g_self, g_nbr, g_w, g_bias};
  }
  // Several threads: pass 1 per batch row, pass 2 scatters with each thread owning table rows.
  // pre-activation gradient gp = grad * act'(out), written once and read by the scatters below
  torch::Tensor gp = act == kNone ? grad : torch::empty_like(grad);
  AT_DISPATCH_FLOATING_TYPES(nbr_tab.scalar_type(), "tree_bag_bwd", [&] {
    const scalar_t* NT = nbr_tab.data_ptr<scalar_t>();
    const int64_t* FI = field.data_ptr<int64_t>();
    const scalar_t* Wt = w.data_ptr<scalar_t>();
    const scalar_t* G = grad.data_ptr<scalar_t>();
    const scalar_t* H = out.data_ptr<scalar_t>();
    scalar_t* P = gp.data_ptr<scalar_t>();
    scalar_t* GW = need_w ? g_w.data_ptr<scalar_t>() : nullptr;
    // pass 1, per batch row: act', bias partial sums (one slot per thread), dL/dw
    std::vector<scalar_t> bias_part(need_bias ? nt * d : 0, scalar_t(0));
    at::parallel_for(0, B, 64, [&](int64_t b0, int64_t b1) {
      scalar_t* bp = need_bias ? bias_part.data() + at::get_thread_num() * d : nullptr;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t* f = FI + b * F;
        for (int64_t s = 0; s < S; ++s) {
          const int64_t row = (b * S + s) * d;
          scalar_t* gs = P + row;
          if (act == kRelu) for (int64_t j = 0; j < d; ++j) gs[j] = H[row + j] > 0 ? G[row + j] : scalar_t(0);
          else if (act == kTanh) for (int64_t j = 0; j < d; ++j) gs[j] = G[row + j] * (1 - H[row + j] * H[row + j]);
          if (bp) for (int64_t j = 0; j < d; ++j) bp[j] += gs[j];
          if (GW)
            for (int64_t k = 0; k < K; ++k) GW[b * WW + s * K + k] = dot<scalar_t>(gs, NT + f[1 + s * K + k] * d, d);
        }
      }
    });
    if (need_bias) {
      g_bias = torch::zeros({d}, nbr_tab.options());
      scalar_t* GB = g_bias.data_ptr<scalar_t>();
      for (int64_t t = 0; t < nt; ++t)
        for (int64_t j = 0; j < d; ++j) GB[j] += bias_part[t * d + j];
    }
    if (g_nbr.defined()) {
      scalar_t* GN = g_nbr.data_ptr<scalar_t>();
      const bool add_self = shared && need_self;
      owned_rows(R, [&](int64_t rb, int64_t re) {
        for (int64_t b = 0; b < B; ++b) {
          const int64_t* f = FI + b * F;
          const scalar_t* wb = Wt + b * WW;
          for (int64_t s = 0; s < S; ++s) {
            const scalar_t* gs = P + (b * S + s) * d;
            if (add_self) {
              const int64_t r = f[s];
              if (r >= rb && r < re) axpy(GN + r * d, scalar_t(1), gs, d);
            }
            for (int64_t k = 0; k < K; ++k) {
              const int64_t r = f[1 + s * K + k];
              if (r >= rb && r < re) axpy(GN + r * d, wb[s * K + k], gs, d);
            }
          }
        }
      });
    }
    if (g_self.defined()) {
      scalar_t* GS = g_self.data_ptr<scalar_t>();
      owned_rows(self_tab.size(0), [&](int64_t rb, int64_t re) {
        for (int64_t b = 0; b < B; ++b) {
          const int64_t* f = FI + b * F;
          for (int64_t s = 0; s < S; ++s) {
            const int64_t r = f[s];
            if (r >= rb && r < re) axpy(GS + r * d, scalar_t(1), P + (b * S + s) * d, d);
          }
        }
      });
    }
  });
  return {g_self, g_nbr, g_w, g_bias};
}

// ---------------------------------------------------------------------------------------------
// node_bag: aggregator input of the first S nodes of a per-row tree h [B, P, d], with
//   n[b, s] = Σ_k w[b, s*K+k] · h[b, 1+s*K+k]
// mode kNbr:    out[b, s] = n[b, s]                    -> [B, S, d]   (neighbor aggregator)
// mode kSum:    out[b, s] = h[b, s] + n[b, s]          -> [B, S, d]   (sum)
// mode kConcat: out[b, s] = [h[b, s] ; n[b, s]]        -> [B, S, 2d]  (concat)
enum NodeMode : int64_t { kNbr = 0, kSum = 1, kConcat = 2 };

torch::Tensor node_bag_fwd(torch::Tensor h, torch::Tensor w, int64_t S, int64_t K, int64_t mode) {
  const int64_t B = h.size(0), P = h.size(1), d = h.size(2), WW = w.size(1);
  const int64_t dout = mode == kConcat ? 2 * d : d;
  auto out = torch::empty({B, S, dout}, h.options());
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "node_bag_fwd", [&] {
    const scalar_t* Hh = h.data_ptr<scalar_t>();
    const scalar_t* Wt = w.data_ptr<scalar_t>();
    scalar_t* O = out.data_ptr<scalar_t>();
    at::parallel_for(0, B, 128, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const scalar_t* hb = Hh + b * P * d;
        const scalar_t* wb = Wt + b * WW;
        for (int64_t s = 0; s < S; ++s) {
          scalar_t* o = O + (b * S + s) * dout;
          const scalar_t* self = hb + s * d;
          scalar_t* nb = o;
          if (mode == kSum) {
            for (int64_t j = 0; j < d; ++j) o[j] = self[j];
          } else {
            if (mode == kConcat) {
              for (int64_t j = 0; j < d; ++j) o[j] = self[j];
              nb = o + d;
            }
            for (int64_t j = 0; j < d; ++j) nb[j] = 0;
          }
          for (int64_t k = 0; k < K; ++k) axpy(nb, wb[s * K + k], hb + (1 + s * K + k) * d, d);
        }
      }
    });
  });
  return out;
}

// Returns {grad_h [B, P, d], grad_w [B, WW] (zero for edges of nodes >= S)}.
std::vector<torch::Tensor> node_bag_bwd(torch::Tensor h, torch::Tensor w, torch::Tensor grad, int64_t S, int64_t K,
                                        int64_t mode, bool need_h, bool need_w) {
  const int64_t B = h.size(0), P = h.size(1), d = h.size(2), WW = w.size(1);
  const int64_t dout = mode == kConcat ? 2 * d : d;
  // each row's block of grad_h is zeroed and filled by the thread that owns the row
  torch::Tensor gh = need_h ? torch::empty_like(h) : torch::Tensor();
  torch::Tensor gw = need_w ? torch::zeros_like(w) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "node_bag_bwd", [&] {
    const scalar_t* Hh = h.data_ptr<scalar_t>();
    const scalar_t* Wt = w.data_ptr<scalar_t>();
    const scalar_t* G = grad.data_ptr<scalar_t>();
    scalar_t* GH = need_h ? gh.data_ptr<scalar_t>() : nullptr;
    scalar_t* GW = need_w ? gw.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, B, 128, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        scalar_t* ghb = GH ? GH + b * P * d : nullptr;
        if (ghb) for (int64_t j = 0; j < P * d; ++j) ghb[j] = 0;
        for (int64_t s = 0; s < S; ++s) {
          const scalar_t* gs = G + (b * S + s) * dout;
          const scalar_t* gn = mode == kConcat ? gs + d : gs;
          if (ghb && mode != kNbr) axpy(ghb + s * d, scalar_t(1), gs, d);  // the node's own vector
          for (int64_t k = 0; k < K; ++k) {
            const int64_t node = 1 + s * K + k;
            const int64_t e = b * WW + s * K + k;
            if (GW) GW[e] = dot(gn, Hh + (b * P + node) * d, d);
            if (ghb) axpy(ghb + node * d, Wt[e], gn, d);
          }
        }
      }
    });
  });
  return {gh, gw};
}

// ---------------------------------------------------------------------------------------------
// plan_batch: the rows a batch touches and its receptive field in local indices (KGCN.plan).
//   adj_e, adj_r int64[n_entities, K]; users, items int64[B]; extra int64[n_extra];
//   text_entity bool[n_entities] (or empty: no text); L hops.
// Returns {user_ids, text_ids, plain_ids (all sorted), users_local [B], field_local [B, F],
//          relations [B, F-1], extra_local [n_extra]}; local entity rows are text ids then plain ids.
std::vector<torch::Tensor> plan_batch(torch::Tensor adj_e, torch::Tensor adj_r, torch::Tensor users,
                                      torch::Tensor items, torch::Tensor extra, torch::Tensor text_entity,
                                      int64_t n_users, int64_t L) {
  const int64_t nE = adj_e.size(0), K = adj_e.size(1), B = items.size(0), nx = extra.size(0);
  int64_t F = 0, S = 0;
  for (int64_t h = 0, p = 1; h <= L; ++h, p *= K) { F += p; if (h < L) S += p; }
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  auto field = torch::empty({B, F}, i64);
  auto rel = torch::empty({B, F - 1}, i64);
  const int64_t* AE = adj_e.data_ptr<int64_t>();
  const int64_t* AR = adj_r.data_ptr<int64_t>();
  const int64_t* IT = items.data_ptr<int64_t>();
  const int64_t* EX = extra.data_ptr<int64_t>();
  const int64_t* US = users.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    TORCH_CHECK(IT[b] >= 0 && IT[b] < nE, "item id ", IT[b], " at batch position ", b, " outside 0..", nE - 1);
    TORCH_CHECK(US[b] >= 0 && US[b] < n_users, "user id ", US[b], " at batch position ", b, " outside 0..", n_users - 1);
  }
  for (int64_t i = 0; i < nx; ++i)
    TORCH_CHECK(EX[i] >= 0 && EX[i] < nE, "extra item id ", EX[i], " at position ", i, " outside 0..", nE - 1);
  int64_t* FI = field.data_ptr<int64_t>();
  int64_t* RL = rel.data_ptr<int64_t>();
  at::parallel_for(0, B, 256, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      int64_t* f = FI + b * F;
      int64_t* r = RL + b * (F - 1);
      f[0] = IT[b];
      for (int64_t p = 0; p < S; ++p)
        for (int64_t k = 0; k < K; ++k) {
          f[1 + p * K + k] = AE[f[p] * K + k];
          r[p * K + k] = AR[f[p] * K + k];
        }
    }
  });
  // unique entities via a mark array (sorted by construction), text items first
  std::vector<uint8_t> mark(nE, 0);
  for (int64_t i = 0; i < B * F; ++i) mark[FI[i]] = 1;
  for (int64_t i = 0; i < nx; ++i) mark[EX[i]] = 1;
  const bool* TE = text_entity.numel() ? text_entity.data_ptr<bool>() : nullptr;
  int64_t n_text = 0, n_plain = 0;
  for (int64_t e = 0; e < nE; ++e)
    if (mark[e]) { if (TE && TE[e]) ++n_text; else ++n_plain; }
  auto text_ids = torch::empty({n_text}, i64);
  auto plain_ids = torch::empty({n_plain}, i64);
  std::vector<int64_t> remap(nE);
  {
    int64_t* T = text_ids.data_ptr<int64_t>();
    int64_t* Pl = plain_ids.data_ptr<int64_t>();
    int64_t it = 0, ip = 0;
    for (int64_t e = 0; e < nE; ++e) {
      if (!mark[e]) continue;
      if (TE && TE[e]) { T[it] = e; remap[e] = it++; }
      else { Pl[ip] = e; remap[e] = n_text + ip++; }
    }
  }
  for (int64_t i = 0; i < B * F; ++i) FI[i] = remap[FI[i]];
  auto extra_local = torch::empty({nx}, i64);
  int64_t* XL = extra_local.data_ptr<int64_t>();
  for (int64_t i = 0; i < nx; ++i) XL[i] = remap[EX[i]];
  // unique users
  std::vector<int64_t> uremap(n_users, -1);
  int64_t nu = 0;
  for (int64_t b = 0; b < B; ++b) uremap[US[b]] = 0;
  for (int64_t u = 0; u < n_users; ++u) if (uremap[u] == 0) ++nu;
  auto user_ids = torch::empty({nu}, i64);
  {
    int64_t* UI = user_ids.data_ptr<int64_t>();
    int64_t j = 0;
    for (int64_t u = 0; u < n_users; ++u) if (uremap[u] == 0) { UI[j] = u; uremap[u] = j++; }
  }
  auto users_local = torch::empty({B}, i64);
  int64_t* UL = users_local.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) UL[b] = uremap[US[b]];
  return {user_ids, text_ids, plain_ids, users_local, field, rel, extra_local};
}

// ---------------------------------------------------------------------------------------------
// Row-sparse Adam for embedding tables (kgcl_lib.model.table_adam.TableAdam), float32, contiguous.
// The rows of a batch are scattered over tables much larger than the cache; asking for the
// lines of row i + kAhead while working on row i overlaps those memory latencies.
constexpr int64_t kAhead = 8;
inline void prefetch_row(const float* P, const float* MV, const int64_t* LAST, int64_t id, int64_t d) {
  const char* p = reinterpret_cast<const char*>(P + id * d);
  const char* m = reinterpret_cast<const char*>(MV + id * 2 * d);
  for (int64_t o = 0; o < d * 4; o += 64) __builtin_prefetch(p + o);
  for (int64_t o = 0; o < d * 8; o += 64) __builtin_prefetch(m + o);
  __builtin_prefetch(LAST + id);
}

// The Adam arithmetic below must round like torch's element-wise kernels: no fused multiply-add
// contraction (GCC contracts a*b+c by default), only the explicit std::fma of ATen's lerp.
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

// One dense-Adam step of torch.optim.Adam's single-tensor update on element (p, m, v) with
// gradient g, in its operation order:
//   m.lerp_(g, 1-b1)                      (ATen's vectorised lerp: fma(w, g - m, m))
//   v.mul_(b2).addcmul_(g, g, value=1-b2)  (ATen: fma(value * g, g, v * b2))
//   denom = v.sqrt() / bc2_sqrt + eps;  p.addcdiv_(m, denom, value=-step_size)
struct AdamConsts {
  float w1, b2, omb2, eps;
};
inline void adam_elem(float& p, float& m, float& v, float g, float step_size, float bc2_sqrt, const AdamConsts& c) {
  m = std::fma(c.w1, g - m, m);
  v = std::fma(c.omb2 * g, g, v * c.b2);
  const float denom = std::sqrt(v) / bc2_sqrt + c.eps;
  p = p + (-step_size) * m / denom;
}

// (torch's sqrt is not always correctly rounded, std::sqrt is: results agree to ~1 ulp per step.)

// Idle steps s = s0+1 .. s1 of W elements under whole-table L2 (gradient l2 * p), kept in
// registers, in torch's operation order (the portable path, used without AVX2/AVX-512).
template <int W>
inline void idle_block(float* __restrict p, float* __restrict m, float* __restrict v, int64_t s0, int64_t s1,
                       const float* __restrict SCH, float l2, const AdamConsts& c) {
  float pp[W], mm[W], vv[W];
  for (int q = 0; q < W; ++q) { pp[q] = p[q]; mm[q] = m[q]; vv[q] = v[q]; }
  for (int64_t s = s0 + 1; s <= s1; ++s) {
    const float a = SCH[2 * s], bs = SCH[2 * s + 1];
    for (int q = 0; q < W; ++q) {
      const float g = l2 * pp[q];
      mm[q] = std::fma(c.w1, g - mm[q], mm[q]);
      vv[q] = std::fma(c.omb2 * g, g, vv[q] * c.b2);
      const float denom = std::sqrt(vv[q]) / bs + c.eps;
      pp[q] = pp[q] + (-a) * mm[q] / denom;
    }
  }
  for (int q = 0; q < W; ++q) { p[q] = pp[q]; m[q] = mm[q]; v[q] = vv[q]; }
}

inline void idle_row(float* p, float* m, float* v, int64_t d, int64_t s0, int64_t s1, const float* SCH, float l2,
                     const AdamConsts& c) {
  int64_t j = 0;
  for (; j + 64 <= d; j += 64) idle_block<64>(p + j, m + j, v + j, s0, s1, SCH, l2, c);
  for (; j + 16 <= d; j += 16) idle_block<16>(p + j, m + j, v + j, s0, s1, SCH, l2, c);
  for (; j < d; ++j) idle_block<1>(p + j, m + j, v + j, s0, s1, SCH, l2, c);
}

#pragma GCC pop_options

// ---- the vectorised idle iteration (AVX-512 / AVX2) -------------------------------------------
// The idle recurrence is bound by the divide/sqrt unit: torch's update costs one sqrt and two
// IEEE divisions per element and step (≈ 2.5 G element-steps/s per core here, whatever the
// vector width).  This path keeps m and v in torch's exact operations and rewrites only the
// parameter update, identically in real arithmetic:
//   p + (-a)·m / (√v/bs + ε)  =  p + (-(a·bs)·m) · 1/(√v + ε·bs)
// with 1/x from the hardware reciprocal estimate refined by one Newton step (r·(2 − x·r): error
// ≈ 1 ulp), so the divider only does the sqrt and the multiply pipes take the rest (≈ 1.8×
// faster).  The result differs from torch's rounding by ~1 ulp of the update per step; the tests
// bound the whole trajectory against dense torch.optim.Adam (rel 1e-5 / abs 1e-7).
// Throughput needs independent work: NV vectors (slots: 16/8-lane chunks of rows, grouped
// across rows sorted by their last step) advance together, so a 64-wide row is not latency-bound.
#if defined(__AVX512F__)
struct VecIsa {
  using T = __m512;
  static constexpr int L = 16, NV = 8;
  static T set1(float x) { return _mm512_set1_ps(x); }
  static __mmask16 mask(int n) { return (__mmask16)((1u << n) - 1u); }
  static T load(const float* p, int n) { return n == L ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask(n), p); }
  static void store(float* p, T x, int n) {
    if (n == L) _mm512_storeu_ps(p, x);
    else _mm512_mask_storeu_ps(p, mask(n), x);
  }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T fnma(T a, T b, T c) { return _mm512_fnmadd_ps(a, b, c); }
  static T sqrt(T a) { return _mm512_sqrt_ps(a); }
  static T rcp(T a) { return _mm512_rcp14_ps(a); }  // |rel err| < 2^-14
};
#define KGCL_VEC_IDLE 1
#elif defined(__AVX2__) && defined(__FMA__)
struct VecIsa {
  using T = __m256;
  static constexpr int L = 8, NV = 16;  // 128 elements, as AVX-512's: spills, but fastest measured
  static T set1(float x) { return _mm256_set1_ps(x); }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static T load(const float* p, int n) { return n == L ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask(n)); }
  static void store(float* p, T x, int n) {
    if (n == L) _mm256_storeu_ps(p, x);
    else _mm256_maskstore_ps(p, mask(n), x);
  }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T fnma(T a, T b, T c) { return _mm256_fnmadd_ps(a, b, c); }
  static T sqrt(T a) { return _mm256_sqrt_ps(a); }
  static T rcp(T a) { return _mm256_rcp_ps(a); }  // |rel err| < 1.5·2^-12
};
#define KGCL_VEC_IDLE 1
#endif

#ifdef KGCL_VEC_IDLE
// A chunk of up to L consecutive elements of one row copy, idle since step t0.
struct IdleSlot {
  float *p, *m, *v;
  int n;
  int64_t t0;
};

// Steps s0+1 .. s1 of the first NA slots, in registers.
template <int NA>
inline void idle_slots_run(const IdleSlot* sl, int64_t s0, int64_t s1, const float* __restrict SCH, float l2,
                           const AdamConsts& c) {
  using V = VecIsa;
  typename V::T P[NA], M[NA], Q[NA];
  for (int k = 0; k < NA; ++k) { P[k] = V::load(sl[k].p, sl[k].n); M[k] = V::load(sl[k].m, sl[k].n); Q[k] = V::load(sl[k].v, sl[k].n); }
  const auto L2 = V::set1(l2), W1 = V::set1(c.w1), B2 = V::set1(c.b2), OB = V::set1(c.omb2), TWO = V::set1(2.f);
  for (int64_t s = s0 + 1; s <= s1; ++s) {
    const float a = SCH[2 * s], bs = SCH[2 * s + 1];
    const auto A = V::set1(-(a * bs)), EB = V::set1(c.eps * bs);
    for (int k = 0; k < NA; ++k) {
      const auto g = V::mul(L2, P[k]);
      M[k] = V::fma(W1, V::sub(g, M[k]), M[k]);          // torch: m.lerp_(g, 1-b1)
      Q[k] = V::fma(V::mul(OB, g), g, V::mul(Q[k], B2));  // torch: v.mul_(b2).addcmul_(g, g, 1-b2)
      const auto x = V::add(V::sqrt(Q[k]), EB);
      auto r = V::rcp(x);
      r = V::mul(r, V::fnma(x, r, TWO));  // one Newton step
      P[k] = V::fma(V::mul(A, M[k]), r, P[k]);
    }
  }
  for (int k = 0; k < NA; ++k) { V::store(sl[k].p, P[k], sl[k].n); V::store(sl[k].m, M[k], sl[k].n); V::store(sl[k].v, Q[k], sl[k].n); }
}

template <int NA>
inline void idle_slots_dispatch(int na, const IdleSlot* sl, int64_t s0, int64_t s1, const float* SCH, float l2,
                                const AdamConsts& c) {
  if constexpr (NA > 0) {
    if (na == NA) return idle_slots_run<NA>(sl, s0, s1, SCH, l2, c);
    idle_slots_dispatch<NA - 1>(na, sl, s0, s1, SCH, l2, c);
  }
}

// Slots sl[0..n) (n <= NV) sorted by t0, all brought to step `target`: between consecutive t0s
// the slots already idle at that step advance together.
inline void idle_slots(const IdleSlot* sl, int n, int64_t target, const float* SCH, float l2, const AdamConsts& c) {
  int j = 0;
  int64_t cur = sl[0].t0;
  while (cur < target) {
    while (j < n && sl[j].t0 <= cur) ++j;
    const int64_t nxt = j < n && sl[j].t0 < target ? sl[j].t0 : target;
    idle_slots_dispatch<VecIsa::NV>(j, sl, cur, nxt, SCH, l2, c);
    cur = nxt;
  }
}
#endif

// Rows i in [b, e) of a rows_begin output (copies po [m, d], mo [m, 2, d]) idle since
// LAST[I[i]], brought to step `target` (whole-table L2).
inline void idle_rows(float* PO, float* MO, const int64_t* I, const int64_t* LAST, int64_t b, int64_t e, int64_t d,
                      int64_t target, const float* SCH, float l2, const AdamConsts& c) {
#ifdef KGCL_VEC_IDLE
  std::vector<int64_t> rows;
  rows.reserve(e - b);
  for (int64_t i = b; i < e; ++i)
    if (LAST[I[i]] < target) rows.push_back(i);
  std::stable_sort(rows.begin(), rows.end(), [&](int64_t x, int64_t y) { return LAST[I[x]] < LAST[I[y]]; });
  constexpr int L = VecIsa::L, NV = VecIsa::NV;
  std::vector<IdleSlot> slots;
  slots.reserve(rows.size() * ((d + L - 1) / L));
  for (int64_t i : rows) {
    float* po = PO + i * d;
    float* mo = MO + i * 2 * d;
    for (int64_t j = 0; j < d; j += L)
      slots.push_back({po + j, mo + j, mo + d + j, (int)std::min<int64_t>(L, d - j), LAST[I[i]]});
  }
  for (size_t g = 0; g < slots.size(); g += NV)
    idle_slots(slots.data() + g, (int)std::min<size_t>(NV, slots.size() - g), target, SCH, l2, c);
#else
  for (int64_t i = b; i < e; ++i) {
    const int64_t t0 = LAST[I[i]];
    if (t0 < target) idle_row(PO + i * d, MO + i * 2 * d, MO + i * 2 * d + d, d, t0, target, SCH, l2, c);
  }
#endif
}

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

// rows_begin: copies of rows `ids` of param [n, d] and mv [n, 2, d] (m, v), brought from their
// last step last[id] up to step `target` (see kgcl_lib/model/table_adam.py TableAdam):
//   mode 0: plain copy (lazy Adam);
//   mode 1: closed-form momentum-only idle updates (batch-scope L2):
//     p -= lr * F(t0, delta) * m / sqrt(v);  m *= b1^delta;  v *= b2^delta
//     where F = win[delta] for delta < H and finf[t0] otherwise; decay[delta] = (b1^delta, b2^delta)
//     for delta < decay.size(0) (std::pow beyond);
//   mode 2: whole-table L2 -- every idle step s = t0+1 .. target iterated one by one as dense
//     Adam with gradient l2 * p (idle_rows; the vector path's rounding: idle_slots_run);
//     sched[s] = (lr / (1 - b1^s), sqrt(1 - b2^s)) as float32.
std::vector<torch::Tensor> rows_begin(torch::Tensor param, torch::Tensor mv, torch::Tensor last, torch::Tensor ids,
                                      int64_t target, torch::Tensor win, torch::Tensor finf, torch::Tensor decay,
                                      torch::Tensor sched, double lr, double b1, double b2, double eps, double l2,
                                      int64_t mode) {
  const int64_t m = ids.size(0), d = param.size(1), nd = decay.size(0);
  const int64_t H = mode == 1 ? win.size(0) - 1 : 0, nf = mode == 1 ? finf.size(0) : 0;
  TORCH_CHECK(mode != 2 || sched.size(0) > target, "rows_begin: schedule shorter than target step ", target);
  auto p = torch::empty({m, d}, param.options());
  auto mvr = torch::empty({m, 2, d}, mv.options());
  const float* P = param.data_ptr<float>();
  const float* MV = mv.data_ptr<float>();
  const int64_t* LAST = last.data_ptr<int64_t>();
  const int64_t* I = ids.data_ptr<int64_t>();
  const float* WIN = mode == 1 ? win.data_ptr<float>() : nullptr;
  const float* FINF = nf ? finf.data_ptr<float>() : nullptr;
  const float* DEC = decay.data_ptr<float>();
  const float* SCH = mode == 2 ? sched.data_ptr<float>() : nullptr;
  float* PO = p.data_ptr<float>();
  float* MO = mvr.data_ptr<float>();
  const AdamConsts c{(float)(1.0 - b1), (float)b2, (float)(1.0 - b2), (float)eps};
  const float fl2 = (float)l2;
  // Whole-table L2: a row's cost is its idle steps, which vary by orders of magnitude between rows
  // (a user seen last step vs an entity untouched all epoch), so the rows are cut into one range
  // per thread of equal total idle steps instead of equal row counts.
  std::vector<int64_t> cut{0, m};
  if (mode == 2) {
    const int64_t T = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), m / 16));
    std::vector<int64_t> work(m + 1, 0);
    for (int64_t i = 0; i < m; ++i) work[i + 1] = work[i] + 1 + std::max<int64_t>(0, target - LAST[I[i]]);
    cut.assign(1, 0);
    for (int64_t k = 1, i = 0; k < T; ++k) {
      while (i < m && work[i] * T < work[m] * k) ++i;
      if (i > cut.back()) cut.push_back(i);
    }
    cut.push_back(m);
  }
  const int64_t nchunk = (int64_t)cut.size() - 1;
  at::parallel_for(0, mode == 2 ? nchunk : m, mode == 2 ? 1 : 512, [&](int64_t b0, int64_t e0) {
    const int64_t b = mode == 2 ? cut[b0] : b0, e = mode == 2 ? cut[e0] : e0;
    for (int64_t i = b; i < e; ++i) {
      if (i + kAhead < e) prefetch_row(P, MV, LAST, I[i + kAhead], d);
      const int64_t id = I[i];
      const float* ps = P + id * d;
      const float* ms = MV + id * 2 * d;
      float* po = PO + i * d;
      float* mo = MO + i * 2 * d;
      const int64_t t0 = LAST[id], delta = target - t0;
      if (mode == 0 || delta <= 0) {
        for (int64_t j = 0; j < d; ++j) { po[j] = ps[j]; mo[j] = ms[j]; mo[d + j] = ms[d + j]; }
        continue;
      }
      if (mode == 2) {  // copy now, iterate the idle steps below (all rows of the range at once)
        for (int64_t j = 0; j < d; ++j) { po[j] = ps[j]; mo[j] = ms[j]; mo[d + j] = ms[d + j]; }
        continue;
      }
      float F;
      if (delta < H) F = WIN[delta];
      else F = (FINF && nf) ? FINF[t0 < nf ? t0 : nf - 1] : 0.f;
      const float step = (float)(lr * F);
      float dm, dv;
      if (delta < nd) { dm = DEC[2 * delta]; dv = DEC[2 * delta + 1]; }
      else { dm = (float)std::pow(b1, (double)delta); dv = (float)std::pow(b2, (double)delta); }
      for (int64_t j = 0; j < d; ++j) {
        const float mj = ms[j], vj = ms[d + j];
        // v > 0 for every row that ever had a gradient; rows never touched have m = v = 0
        const float r = vj > 0 ? mj / std::sqrt(vj) : 0.f;
        po[j] = ps[j] - step * r;
        mo[j] = mj * dm;
        mo[d + j] = vj * dv;
      }
    }
    if (mode == 2) idle_rows(PO, MO, I, LAST, b, e, d, target, SCH, fl2, c);
  });
  return {p, mvr};
}

// rows_finish: Adam step t on the rows with gradient grad + l2 * p_rows (grad [m, d] or empty for
// zero; l2 = the gradient of (l2/2)·Σ p² over the rows) and scatter p, m, v back; last[id] = t.
// step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t), as torch.optim.Adam computes them.
void rows_finish(torch::Tensor param, torch::Tensor mv, torch::Tensor last, torch::Tensor ids, torch::Tensor p_rows,
                 torch::Tensor mv_rows, torch::Tensor grad, double l2, double step_size, double bc2_sqrt, double b1,
                 double b2, double eps, int64_t t, bool set_last) {
  const int64_t m = ids.size(0), d = param.size(1);
  float* P = param.data_ptr<float>();
  float* MV = mv.data_ptr<float>();
  int64_t* LAST = last.data_ptr<int64_t>();
  const int64_t* I = ids.data_ptr<int64_t>();
  const float* PR = p_rows.data_ptr<float>();
  const float* MR = mv_rows.data_ptr<float>();
  const float* G = grad.numel() ? grad.data_ptr<float>() : nullptr;
  const float fl2 = (float)l2, fstep = (float)step_size, fbc2 = (float)bc2_sqrt;
  const AdamConsts c{(float)(1.0 - b1), (float)b2, (float)(1.0 - b2), (float)eps};
  at::parallel_for(0, m, 512, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      if (i + kAhead < e) prefetch_row(P, MV, LAST, I[i + kAhead], d);
      const int64_t id = I[i];
      const float* g = G ? G + i * d : nullptr;
      const float* pr = PR + i * d;
      const float* mr = MR + i * 2 * d;
      float* po = P + id * d;
      float* mo = MV + id * 2 * d;
      for (int64_t j = 0; j < d; ++j) {
        // the gradient of the loss plus λ·p (torch: grad of L + λ·½‖P‖², accumulated by autograd)
        const float gj = (g ? g[j] : 0.f) + fl2 * pr[j];
        float pj = pr[j], mj = mr[j], vj = mr[d + j];
        adam_elem(pj, mj, vj, gj, fstep, fbc2, c);
        po[j] = pj;
        mo[j] = mj;
        mo[d + j] = vj;
      }
      if (set_last) LAST[id] = t;
    }
  });
}
#pragma GCC pop_options
