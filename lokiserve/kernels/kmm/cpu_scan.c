/* KMM top-k selection and value combine for CPUs, after the score matmul.
 *
 * Why C: on CPU the memory's cost is per (query, head, field) row, not per
 * FLOP. torch.topk, softmax, index_select and bmm each pay a per-row or
 * per-call overhead several times larger than the work itself (256 scores
 * per row). One pass per row here keeps the k best slots in a small sorted
 * list, and accumulates the softmax-weighted values straight into the output.
 *
 * Contract (the reference's, lokiserve/kernels/kmm/naive.py):
 *   - top-k per (row, enabled field); exact ties resolve to the lower slot
 *     index (a later equal score never displaces an earlier one, which is
 *     what a stable descending sort gives);
 *   - softmax over the k selected scores, weighted sum of their values,
 *     summed over enabled fields; a disabled field is not searched;
 *   - a NaN score poisons its (row, field) output with NaN, as the reference's
 *     sort (NaN first) and softmax do.
 *
 * Plain C99 without torch headers: built at first use with the system C
 * compiler (lokiserve/kernels/kmm/native.py) and called through ctypes.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define KMM_MAX_TOPK 64
#define KMM_CHUNK 16 /* scores per skip test */

int lokiserve_kmm_max_topk(void) { return KMM_MAX_TOPK; }

/* A lower bound on the k-th largest score of s[0..N), and NaN detection.
 * The maxima of KMM_CHUNK interleaved groups (slot j in group j % KMM_CHUNK)
 * are computed elementwise across groups, so the loop vectorises without a
 * reduction; the k largest of those maxima are k distinct scores, so the
 * k-th of them is <= the true k-th score. Scores below it are never in the
 * top k and the scan skips them. With fewer groups than k: -inf (no skip). */
static float kth_lower_bound(const float *restrict s, int64_t N, int64_t K, int *nan)
{
    int bad = 0;
    if (N < KMM_CHUNK || K > KMM_CHUNK) {
        for (int64_t j = 0; j < N; ++j)
            bad |= s[j] != s[j];
        *nan = bad;
        return -INFINITY;
    }
    float gmax[KMM_CHUNK];
    int gbad[KMM_CHUNK];
    for (int g = 0; g < KMM_CHUNK; ++g) {
        gmax[g] = s[g];
        gbad[g] = s[g] != s[g];
    }
    int64_t j = KMM_CHUNK;
    for (; j + KMM_CHUNK <= N; j += KMM_CHUNK)
        for (int g = 0; g < KMM_CHUNK; ++g) {
            const float v = s[j + g];
            gmax[g] = v > gmax[g] ? v : gmax[g];
            gbad[g] |= v != v;
        }
    for (int g = 0; j + g < N; ++g) {
        const float v = s[j + g];
        gmax[g] = v > gmax[g] ? v : gmax[g];
        gbad[g] |= v != v;
    }
    for (int g = 0; g < KMM_CHUNK; ++g)
        bad |= gbad[g];
    *nan = bad;
    /* k-th largest of the group maxima: partial selection sort */
    for (int64_t i = 0; i < K; ++i) {
        int64_t m = i;
        for (int64_t t = i + 1; t < KMM_CHUNK; ++t)
            if (gmax[t] > gmax[m])
                m = t;
        const float tmp = gmax[i];
        gmax[i] = gmax[m];
        gmax[m] = tmp;
    }
    return gmax[K - 1];
}

/* scores: [R, F, N] float32, already scaled by 1/sqrt(d_k)
 * values: [F, N, D] float32
 * enabled: [F] uint8 (0 = field disabled)
 * out:     [R, D] float32, overwritten
 * Returns 0, or -1 when topk is out of [1, min(N, KMM_MAX_TOPK)]. */
int lokiserve_kmm_topk_combine_f32(const float *restrict scores, const float *restrict values,
                                   const uint8_t *restrict enabled, int64_t R, int64_t F, int64_t N, int64_t D,
                                   int64_t K, float *restrict out)
{
    if (K < 1 || K > N || K > KMM_MAX_TOPK)
        return -1;
    float best[KMM_MAX_TOPK];
    int64_t slot[KMM_MAX_TOPK];
    for (int64_t r = 0; r < R; ++r) {
        float *restrict o = out + r * D;
        memset(o, 0, (size_t)D * sizeof(float));
        for (int64_t f = 0; f < F; ++f) {
            if (!enabled[f])
                continue;
            const float *restrict s = scores + (r * F + f) * N;
            int nan = 0;
            const float floor_ = kth_lower_bound(s, N, K, &nan);
            if (nan) {
                for (int64_t d = 0; d < D; ++d)
                    o[d] = NAN;
                continue;
            }
            int64_t n = 0;
            for (int64_t j0 = 0; j0 < N; j0 += KMM_CHUNK) {
                const int64_t j1 = j0 + KMM_CHUNK < N ? j0 + KMM_CHUNK : N;
                int hit = 0; /* integer OR: vectorised; most chunks are skipped */
                for (int64_t j = j0; j < j1; ++j)
                    hit |= s[j] >= floor_;
                if (!hit)
                    continue;
                for (int64_t j = j0; j < j1; ++j) {
                    const float v = s[j];
                    int64_t p;
                    if (v < floor_) {
                        continue; /* below the bound: cannot be among the k best */
                    } else if (n < K) {
                        p = n++;
                    } else if (v > best[K - 1]) {
                        p = K - 1;
                    } else {
                        continue;
                    }
                    /* shift strictly smaller entries down: equal ones stay ahead */
                    while (p > 0 && best[p - 1] < v) {
                        best[p] = best[p - 1];
                        slot[p] = slot[p - 1];
                        --p;
                    }
                    best[p] = v;
                    slot[p] = j;
                }
            }
            if (n < K) { /* cannot happen for finite scores; keep the contract loud */
                for (int64_t d = 0; d < D; ++d)
                    o[d] = NAN;
                continue;
            }
            float w[KMM_MAX_TOPK];
            float total = 0.0f;
            for (int64_t i = 0; i < K; ++i) {
                w[i] = expf(best[i] - best[0]);
                total += w[i];
            }
            for (int64_t i = 0; i < K; ++i) {
                const float wi = w[i] / total;
                const float *restrict val = values + (f * N + slot[i]) * D;
                for (int64_t d = 0; d < D; ++d)
                    o[d] += wi * val[d];
            }
        }
    }
    return 0;
}
