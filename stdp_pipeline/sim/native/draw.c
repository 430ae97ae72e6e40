/* Poisson input spikes of a batch of presentations, laid out per step (the native engine's
 * input, train.engine = "native").
 *
 * The events of stdp_pipeline/sim/codes/poisson.py `events` and the slots of
 * stdp_pipeline/sim/codes/base.py `slots`, bit for bit, from the tables TensorFlow computes
 * (`rate_tables`: cumulative rates, totals, the Poisson CDF of the spikes per step) and the keys
 * of `presentation_keys`. Everything here is integer hashing, comparisons and one float32
 * multiply, so the result is exact:
 *
 *   u_t     = uniform(key, stream 1, counter t)
 *   n_t     = #{s : table[s] <= u_t}, at most `slots` (the rest counted as dropped)
 *   spike k of step t: value = uniform(key, stream 2, counter t * slots + k) * total,
 *           input = min(upper_bound(cdf, value), lower_bound(cdf, total))
 *
 * Shapes: keys [B] (int64 holding 32-bit values), cdf [B, P], total [B], table [B, S];
 * counts [B, T], out [B, T, width] int32 (P where empty), dropped [B], busiest [B].
 */
#include <stdint.h>

static inline uint32_t hash32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

/* uniform number `counter` of `stream` of a presentation key, in [0, 1) (codes/base.py) */
static inline float uniform(uint32_t key, int64_t stream, int64_t counter) {
    uint32_t x = hash32(key ^ hash32((uint32_t)(counter + (stream << 28))));
    x = hash32(x + 0x9E3779B9u);
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}

/* std::upper_bound: the first index whose entry is greater than `value` */
static inline int upper_bound(const float *a, int n, float value) {
    int first = 0, len = n;
    while (len > 0) {
        int half = len >> 1, mid = first + half;
        if (value < a[mid]) {
            len = half;
        } else {
            first = mid + 1;
            len = len - half - 1;
        }
    }
    return first;
}

/* std::lower_bound: the first index whose entry is not less than `value` */
static inline int lower_bound(const float *a, int n, float value) {
    int first = 0, len = n;
    while (len > 0) {
        int half = len >> 1, mid = first + half;
        if (a[mid] < value) {
            first = mid + 1;
            len = len - half - 1;
        } else {
            len = half;
        }
    }
    return first;
}

/* Spikes per step (at most `slots`), dropped spikes and busiest step of each presentation. */
void stdp_poisson_counts(int n_digits, int steps, int table_size, const int64_t *keys,
                         const float *table, int slots, int32_t *counts, int32_t *dropped,
                         int32_t *busiest) {
    for (int b = 0; b < n_digits; b++) {
        const uint32_t key = (uint32_t)keys[b];
        const float *table_b = table + (int64_t)b * table_size;
        /* a non-decreasing table (a cumulative sum, as always) is searched from the start; any
         * other is counted entry by entry, as TensorFlow counts */
        int sorted = 1;
        for (int s = 1; s < table_size; s++) sorted &= table_b[s - 1] <= table_b[s];
        int32_t lost = 0, most = 0;
        for (int t = 0; t < steps; t++) {
            const float u = uniform(key, 1, t);
            int count = 0;
            if (sorted) {
                while (count < table_size && table_b[count] <= u) count++;
            } else {
                for (int s = 0; s < table_size; s++) count += u >= table_b[s];
            }
            if (count > slots) {
                lost += count - slots;
                count = slots;
            }
            if (count > most) most = count;
            counts[(int64_t)b * steps + t] = count;
        }
        dropped[b] = lost;
        busiest[b] = most;
    }
}

/* The inputs of the counted spikes, laid out per step: out [B, T, width] (n_inputs where
 * empty); `slots` is the counter stride of the code (SLOTS), `width` at least the busiest step. */
void stdp_poisson_slots(int n_digits, int steps, int n_inputs, const int64_t *keys,
                        const float *cdf, const float *total, const int32_t *counts, int slots,
                        int width, int32_t *out) {
    for (int b = 0; b < n_digits; b++) {
        const uint32_t key = (uint32_t)keys[b];
        const float *cdf_b = cdf + (int64_t)b * n_inputs;
        const float total_b = total[b];
        const int last_lit = lower_bound(cdf_b, n_inputs, total_b);
        for (int t = 0; t < steps; t++) {
            int32_t *row = out + ((int64_t)b * steps + t) * width;
            const int count = counts[(int64_t)b * steps + t];
            for (int k = 0; k < count; k++) {
                const float value = uniform(key, 2, (int64_t)t * slots + k) * total_b;
                const int found = upper_bound(cdf_b, n_inputs, value);
                row[k] = found < last_lit ? found : last_lit;
            }
            for (int k = count; k < width; k++) row[k] = n_inputs;
        }
    }
}
