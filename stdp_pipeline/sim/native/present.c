/* Presentations of Diehl & Cook's network in one C loop each: with learning (stdp_present,
 * train.engine = "native") and without (stdp_respond, evaluate.engine = "native"; the same steps
 * with weights and theta fixed and no plasticity).
 *
 * The same model, step for step, as the compiled TensorFlow program of
 * stdp_pipeline/sim/learning.py for a whole-digit network with conductance neurons
 * (stdp_pipeline/sim/neurons/conductance.py) and trace STDP (stdp_pipeline/sim/rules/trace.py):
 *
 *   per step t (Brian's order; spikes act from the next step):
 *     drive   = sum of W rows of the step's input spikes (slot order)
 *     exc     : integrate v (forward or exponential Euler), decay ge, gi; spike if
 *               v > v_thresh + theta and not blocked; reset; ge += drive
 *     inh     : the same with no drive and no theta; then inh.ge += w_ei * s_e,
 *               exc.gi += w_ie * (sum(s_i) - s_i)
 *     theta   : raised by theta_plus at each spike (decay exact in float32, see _Exact)
 *     post1/2 : decay by exp(-dt / tau_post)
 *     pre     : W[i, :] <- clip(W[i, :] - nu_pre * post1, 0, w_max) for the inputs that spiked
 *               (once per step, however many spikes); their last spike time <- t dt
 *     post    : for each neuron j that fired (ascending),
 *               W[:, j] <- clip(W[:, j] + nu_post * exp((t_last - t dt) / tau_pre) * post2[j],
 *                           0, w_max); then post1[j] = post2[j] = 1
 *
 * All arithmetic is float32 in the order the TensorFlow program writes it, with no contraction
 * into fused multiply-adds (compiled with -ffp-contract=off). exp and expm1 are evaluated here by
 * range reduction and a polynomial (within 2 ulp); XLA uses its own approximations, so results
 * may differ from the TensorFlow engine in the last bits of a float.
 *
 * With input delays (stdp_pipeline/sim/delays.py; d [P, N] steps, 0 <= d < H <= 64) the drive,
 * the depression and the potentiation see each synapse through its delay:
 *
 *     drive   : a spike of input i at step t adds W[i, j] (read at t) to neuron j's drive at step
 *               t + d[i, j] (a ring of H rows [H, N])
 *     pre     : H - 1 steps after a spike of input i at step e,
 *               W[i, j] <- clip(W[i, j] - nu_pre * post1_j(e + d[i, j]), 0, w_max), post1 as
 *               recorded at each of the last H steps (a ring [H, N])
 *     post    : at a spike of neuron j at step t, with s the last spike of input i at or before
 *               step t - d[i, j] (a bit mask of each input's spikes over the last H steps, and
 *               t_old[i], its last spike before them),
 *               W[i, j] <- clip(W[i, j] + nu_post * exp(-(t - d[i, j] - s) dt / tau_pre)
 *                           * post2[j], 0, w_max)
 *
 * and the presentation runs on max(H - 1, rest) input-free steps so that every delayed spike
 * arrives and every depression is applied.
 *
 * Shapes: slots [T, K] int32 (n_inputs = no spike), W [P, N] float32 row-major (P = n_inputs),
 * theta [N], counts [N] (out), delays [P, N] uint8 or NULL. Units: ms and mV.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Denormal floats flushed to zero (results and inputs) while a presentation runs, as in
 * TensorFlow's CPU threads: decaying traces and conductances pass through the denormal range,
 * where every multiply takes a slow microcode path. The caller's mode is restored after. */
#if defined(__SSE__)
typedef unsigned int FpMode;
static FpMode flush_denormals(void) {
    const FpMode old = _mm_getcsr();
    _mm_setcsr(old | 0x8040); /* FTZ (bit 15) and DAZ (bit 6) */
    return old;
}
static void restore_fp_mode(FpMode old) { _mm_setcsr(old); }
#else
typedef int FpMode;
static FpMode flush_denormals(void) { return 0; }
static void restore_fp_mode(FpMode old) { (void)old; }
#endif

/* Layer constants, in this order (float32, computed in double by the caller as TensorFlow
 * folds them): */
enum {
    L_V_REST, L_V_RESET, L_V_THRESH, L_E_EXC, L_E_INH,
    L_K_MEM,      /* dt / tau_mem   (forward Euler) */
    L_K_MEM_NEG,  /* -dt / tau_mem  (exponential Euler) */
    L_DEC_GE, L_DEC_GI, /* per-step conductance factors */
    L_REFRACTORY, L_CAN_FIRE, /* refractory_ms, max(block_ms, refractory_ms) */
    L_HOLD_V, L_EXPONENTIAL, /* 0/1 */
    L_SIZE
};

/* Network, rule and adaptation constants. */
enum {
    C_DT, C_W_EI, C_W_IE, C_INHIBITION, C_WEIGHT_SUM,
    C_DEC_POST1, C_DEC_POST2, C_NU_PRE, C_NU_POST, C_TAU_PRE, C_W_MAX,
    C_THETA_EXACT,   /* 1: theta = exp(-t c) (theta0 + acc); 0: theta carried stepwise */
    C_THETA_RATE,    /* c = dt / tau_theta (exact) */
    C_THETA_PLUS,
    C_THETA_DECAY,   /* stepwise: exp(-dt / tau_theta) */
    C_THETA_END,     /* exact: exp(-span / tau_theta); stepwise: exp(-rest / tau_theta) or 1 */
    C_SPAN,          /* steps * dt: how far back the carried spike times move */
    C_SIZE
};

static inline float bits_to_float(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

/* expm1(x) for float32 x: x = k ln2 + r, |r| <= ln2 / 2 (Cody & Waite), expm1(r) by its Taylor
 * series to r^7 (truncation below 2e-8 relative), expm1(x) = 2^k expm1(r) + (2^k - 1). Written
 * without branches so that loops over neurons vectorise. */
static inline float expm1_f(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float kf = (x * 1.44269502f + shifter) - shifter;
    float r = x - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    float p = 1.98412698e-4f;
    p = p * r + 1.38888889e-3f;
    p = p * r + 8.33333333e-3f;
    p = p * r + 4.16666667e-2f;
    p = p * r + 1.66666667e-1f;
    p = p * r + 0.5f;
    p = r + (r * r) * p;
    float s = bits_to_float(((int32_t)kf + 127) << 23);
    return s * p + (s - 1.0f);
}

static inline float exp_f(float x) { return expm1_f(x) + 1.0f; }

typedef struct {
    float *v, *ge, *gi, *since;
} Layer;

/* A layer's constants as values (no aliasing with the state arrays, so loops vectorise). */
typedef struct {
    float v_rest, v_reset, e_exc, e_inh, k_mem, k_neg, dec_ge, dec_gi, refractory, can_fire;
} Consts;

static Consts consts_of(const float *c) {
    Consts k = {c[L_V_REST],   c[L_V_RESET],  c[L_E_EXC],  c[L_E_INH],        c[L_K_MEM],
                c[L_K_MEM_NEG], c[L_DEC_GE], c[L_DEC_GI], c[L_REFRACTORY], c[L_CAN_FIRE]};
    return k;
}

/* One neuron's step: integrate, decay, threshold, reset; ``drive`` joins ge after the step.
 * Takes the state by value and writes the new state into ``out`` (v, ge, gi, since); returns
 * the spike, 1 or 0. */
static inline float neuron_step(const Consts k, float vj, float gej, float gij, float since,
                                float drive, float threshold, float dt, int exponential,
                                int hold, float out[4]) {
    float dv;
    if (exponential) {
        const float g = (1.0f + gej) + gij;
        const float v_inf = ((k.v_rest + gej * k.e_exc) + gij * k.e_inh) / g;
        dv = (v_inf - vj) * -expm1_f(g * k.k_neg);
    } else {
        dv = (((k.v_rest - vj) + gej * (k.e_exc - vj)) + gij * (k.e_inh - vj)) * k.k_mem;
    }
    const float vn = (hold && since < k.refractory) ? vj : vj + dv;
    const float sn = since + dt;
    const float f = (vn > threshold && sn >= k.can_fire) ? 1.0f : 0.0f;
    out[0] = f != 0.0f ? k.v_reset : vn;
    out[1] = gej * k.dec_ge + drive;
    out[2] = gij * k.dec_gi;
    out[3] = f != 0.0f ? 0.0f : sn;
    return f;
}

/* One step of a whole layer (``drive`` and ``threshold`` per neuron); spikes into ``s``;
 * returns how many fired. One instance per (exponential, hold), so that the loop has no branch
 * and vectorises; the ``uniform_*`` ones take no drive and one threshold for every neuron (an
 * inhibitory layer). */
#define LAYER_STEP(NAME, EXPONENTIAL, HOLD, DRIVE, THRESHOLD)                                   \
    static int NAME(const float *c, Layer *st, const float *restrict drive,                    \
                    const float *restrict threshold, float dt, float *restrict s, int n) {     \
        float *restrict v = st->v, *restrict ge = st->ge, *restrict gi = st->gi,               \
                        *restrict since = st->since;                                           \
        const Consts k = consts_of(c);                                                         \
        int fired = 0; /* an integer sum vectorises; a float one is summed in order */         \
        (void)drive;                                                                           \
        for (int j = 0; j < n; j++) {                                                          \
            float o[4];                                                                        \
            const float f = neuron_step(k, v[j], ge[j], gi[j], since[j], DRIVE, THRESHOLD, dt, \
                                        EXPONENTIAL, HOLD, o);                                 \
            v[j] = o[0], ge[j] = o[1], gi[j] = o[2], since[j] = o[3];                          \
            s[j] = f;                                                                          \
            fired += f != 0.0f;                                                                \
        }                                                                                      \
        return fired;                                                                          \
    }

LAYER_STEP(step_euler_hold, 0, 1, drive[j], threshold[j])
LAYER_STEP(step_euler_free, 0, 0, drive[j], threshold[j])
LAYER_STEP(step_exp_hold, 1, 1, drive[j], threshold[j])
LAYER_STEP(step_exp_free, 1, 0, drive[j], threshold[j])
LAYER_STEP(uniform_euler_hold, 0, 1, 0.0f, threshold[0])
LAYER_STEP(uniform_euler_free, 0, 0, 0.0f, threshold[0])
LAYER_STEP(uniform_exp_hold, 1, 1, 0.0f, threshold[0])
LAYER_STEP(uniform_exp_free, 1, 0, 0.0f, threshold[0])

static int layer_step(const float *c, Layer *st, const float *drive, const float *threshold,
                      float dt, float *s, int n) {
    const int hold = c[L_HOLD_V] != 0.0f, exponential = c[L_EXPONENTIAL] != 0.0f;
    if (exponential)
        return hold ? step_exp_hold(c, st, drive, threshold, dt, s, n)
                    : step_exp_free(c, st, drive, threshold, dt, s, n);
    return hold ? step_euler_hold(c, st, drive, threshold, dt, s, n)
                : step_euler_free(c, st, drive, threshold, dt, s, n);
}

/* A step of every neuron of a layer with no drive and the layer's own threshold (v_thresh). */
static int uniform_step(const float *c, Layer *st, float dt, float *s, int n) {
    const int hold = c[L_HOLD_V] != 0.0f, exponential = c[L_EXPONENTIAL] != 0.0f;
    const float *thr = c + L_V_THRESH;
    if (exponential)
        return hold ? uniform_exp_hold(c, st, NULL, thr, dt, s, n)
                    : uniform_exp_free(c, st, NULL, thr, dt, s, n);
    return hold ? uniform_euler_hold(c, st, NULL, thr, dt, s, n)
                : uniform_euler_free(c, st, NULL, thr, dt, s, n);
}

static void layer_rest(const float *c, Layer *st, int n) {
    for (int j = 0; j < n; j++) {
        st->v[j] = c[L_V_REST];
        st->ge[j] = 0.0f;
        st->gi[j] = 0.0f;
        st->since[j] = 1e9f;
    }
}

/* Every neuron in the active set, in index order (when none is known to be at rest: an
 * inhibitory layer that fires at rest, or a state carried from the last presentation); returns
 * how many. */
static int activate_all(int *active, char *is_active, int lo, int hi) {
    for (int j = lo; j < hi; j++) active[j - lo] = j, is_active[j] = 1;
    return hi - lo;
}

/* drive = the sum of the W rows of the step's input spikes `idx` (slot order; n_inputs and
 * beyond: no spike), each neuron's sum ((0 + w_a) + w_b) + ... in slot order. 32 neurons at a
 * time, their partial sums in four 8-wide registers (GCC/Clang vector types, whatever the
 * instruction set): one pass over `drive`, not one per row. */
typedef float v8f __attribute__((vector_size(32)));

static inline v8f load8(const float *p) {
    v8f x;
    memcpy(&x, p, sizeof x);
    return x;
}

static void sum_rows(float *restrict drive, const float *w, const int32_t *idx, int width,
                     int n_inputs, size_t stride, int n) {
    const float *rows[width > 0 ? width : 1];
    int m = 0;
    for (int k = 0; k < width; k++) { /* no branch: how many slots hold a spike varies */
        const int src = idx[k], valid = src >= 0 && src < n_inputs;
        rows[m] = w + (size_t)(valid ? src : 0) * stride;
        m += valid;
    }
    int j0 = 0;
    for (; j0 + 32 <= n; j0 += 32) {
        v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int k = 0; k < m; k++) {
            const float *row = rows[k] + j0;
            a0 = a0 + load8(row), a1 = a1 + load8(row + 8);
            a2 = a2 + load8(row + 16), a3 = a3 + load8(row + 24);
        }
        memcpy(drive + j0, &a0, sizeof a0), memcpy(drive + j0 + 8, &a1, sizeof a1);
        memcpy(drive + j0 + 16, &a2, sizeof a2), memcpy(drive + j0 + 24, &a3, sizeof a3);
    }
    for (; j0 + 8 <= n; j0 += 8) {
        v8f a = {0};
        for (int k = 0; k < m; k++) a = a + load8(rows[k] + j0);
        memcpy(drive + j0, &a, sizeof a);
    }
    for (int j = j0; j < n; j++) {
        float acc = 0.0f;
        for (int k = 0; k < m; k++) acc = acc + rows[k][j];
        drive[j] = acc;
    }
}

/* The neurons j in [lo, hi) that fired (s_e) into `fired`, ascending; a neuron joins `active` at
 * its first spike of the presentation. Returns how many fired. */
static int note_fired(const float *s_e, int lo, int hi, int *fired, int *active, char *is_active,
                      int *n_active) {
    int n_new = 0;
    for (int j = lo; j < hi; j++)
        if (s_e[j] != 0.0f) {
            fired[n_new++] = j;
            if (!is_active[j]) {
                is_active[j] = 1;
                active[(*n_active)++] = j;
            }
        }
    return n_new;
}

/* The inhibitory layer's step for the neurons in [lo, hi), then inh.ge += w_ei at this step's
 * excitatory spikes `fired` (one-to-one); returns how many fired (inhibit_apply then adds
 * exc.gi += w_ie (sum(s_i) - s_i), hollow, once the whole layer's count is known). Only the
 * first `n_stepped` neurons of `active` (those of [lo, hi)) are stepped: an inhibitory neuron
 * whose partner has not fired in this presentation is at rest (v = v_rest, no conductance),
 * and its step changes nothing. When all are (a carried state, or every neuron has fired), one
 * vector loop steps the whole range: neurons step independently, so the order does not matter.
 * `s_i` is all zeros on entry and after inhibit_apply. */
static int inhibit_step(const float *inh_c, Layer *inh, const int *active, int n_stepped,
                        const int *fired, int n_fired, float w_ei, float dt, float *s_i, int lo,
                        int hi) {
    const int exp_i = inh_c[L_EXPONENTIAL] != 0.0f, hold_i = inh_c[L_HOLD_V] != 0.0f;
    const float thr_inh = inh_c[L_V_THRESH];
    const Consts k_inh = consts_of(inh_c);
    const int m = hi - lo;
    int n_inh = 0;
    if (n_stepped == m) {
        Layer part = {inh->v + lo, inh->ge + lo, inh->gi + lo, inh->since + lo};
        n_inh = uniform_step(inh_c, &part, dt, s_i + lo, m);
    }
    for (int a = 0; a < n_stepped && n_stepped < m; a++) {
        const int j = active[a];
        float o[4];
        const float f = neuron_step(k_inh, inh->v[j], inh->ge[j], inh->gi[j], inh->since[j], 0.0f,
                                    thr_inh, dt, exp_i, hold_i, o);
        inh->v[j] = o[0], inh->ge[j] = o[1], inh->gi[j] = o[2], inh->since[j] = o[3];
        s_i[j] = f;
        n_inh += f != 0.0f;
    }
    for (int k = 0; k < n_fired; k++) inh->ge[fired[k]] = inh->ge[fired[k]] + w_ei * 1.0f;
    return n_inh;
}

/* exc.gi += w_ie (n_inh - s_i) for the neurons in [lo, hi) (n_inh: the inhibitory spikes of the
 * whole layer in this step), then s_i back to 0 for the `n_stepped` first of `active`. */
static void inhibit_apply(Layer *exc, const int *active, int n_stepped, int n_inh, float w_ie,
                          float *s_i, int lo, int hi) {
    if (!n_inh) return;
    const float total = (float)n_inh;
    for (int j = lo; j < hi; j++) exc->gi[j] = exc->gi[j] + w_ie * (total - s_i[j]);
    for (int a = 0; a < n_stepped; a++) s_i[active[a]] = 0.0f;
}

/* The inhibitory layer's step and the wiring for a whole layer. */
static void inhibit(const float *inh_c, Layer *inh, Layer *exc, const int *active, int n_stepped,
                    const int *fired, int n_fired, float w_ei, float w_ie, float dt, float *s_i,
                    int n) {
    const int n_inh = inhibit_step(inh_c, inh, active, n_stepped, fired, n_fired, w_ei, dt, s_i,
                                   0, n);
    inhibit_apply(exc, active, n_stepped, n_inh, w_ie, s_i, 0, n);
}

#if defined(__AVX512F__)
/* The places of synapses j .. j + 15 in an [H, M] ring of the neurons from `lo` on (M = `stride`
 * of them) whose rows are steps mod H, for the step r + d (r = the current row):
 * ((r + d[j]) mod H) M + j - lo. */
static inline __m512i ring_offsets(const uint8_t *d, int j, int r, int h, int stride, int lo) {
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i vh = _mm512_set1_epi32(h);
    __m512i a = _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)(d + j))),
                                 _mm512_set1_epi32(r));
    a = _mm512_mask_sub_epi32(a, _mm512_cmpge_epi32_mask(a, vh), a, vh);
    return _mm512_add_epi32(_mm512_mullo_epi32(a, _mm512_set1_epi32(stride)),
                            _mm512_add_epi32(_mm512_set1_epi32(j - lo), lanes));
}
#endif

/* Input delays (see the file's comment). `ring` [H, M]: the drive of the neurons in [lo, hi)
 * (M = hi - lo of them) arriving at each of the next H steps, row (t mod H) for step t; `at[a]`
 * points at row (a mod H), a < 2 H (no division in the loop). Adds the W rows of step t's input
 * spikes `idx` (r = t mod H), each weight into the row of its arrival step. With AVX-512, 16
 * synapses at a time by gather and scatter: their 16 addresses lie in 16 different columns, so
 * no two collide, and each sum is the scalar one. */
static void ring_add(float *const *at, float *ring, const float *w, size_t stride,
                     const uint8_t *delays, const int32_t *idx, int width, int n_inputs, int n,
                     int r, int h, int lo, int hi) {
    for (int k = 0; k < width; k++) {
        const int src = idx[k];
        if (src < 0 || src >= n_inputs) continue;
        const float *row = w + (size_t)src * stride;
        const uint8_t *d = delays + (size_t)src * n;
        int j = lo;
#if defined(__AVX512F__)
        for (; j + 16 <= hi; j += 16) {
            const __m512i off = ring_offsets(d, j, r, h, hi - lo, lo);
            const __m512 sum = _mm512_add_ps(_mm512_i32gather_ps(off, ring, 4),
                                             _mm512_loadu_ps(row + j));
            _mm512_i32scatter_ps(ring, off, sum, 4);
        }
#else
        (void)ring, (void)h;
#endif
        float *const *from = at + r;
        for (; j < hi; j++) {
            float *dst = from[d[j]];
            dst[j - lo] = dst[j - lo] + row[j];
        }
    }
}

/* The drive that arrives at step t for the neurons in [lo, hi): the sum of the step's input
 * rows (into `drive`, indexed by neuron), or with delays the row of step t of the ring of those
 * neurons once the step's rows have joined it (the caller clears that row after the step).
 * Returns where the drive of neuron lo is, the others after it. */
static float *step_drive(float *drive, float *const *at, float *ring, const float *w,
                         size_t stride, const uint8_t *delays, const int32_t *idx, int width,
                         int n_inputs, int n, int t, int h, int lo, int hi) {
    if (!delays) {
        sum_rows(drive + lo, w + lo, idx, width, n_inputs, stride, hi - lo);
        return drive + lo;
    }
    ring_add(at, ring, w, stride, delays, idx, width, n_inputs, n, t % h, h, lo, hi);
    return at[t % h];
}

/* at[a] = base + (a mod h) n for a < 2 h */
static void ring_rows(float **at, float *base, int h, int n) {
    for (int a = 0; a < 2 * h; a++) at[a] = base + (size_t)(a % h) * n;
}

/* Delayed STDP's record of the input spikes: bit k of mask[i] is a spike of input i at step
 * t - k (k < H); t_old[i] its last spike before those steps (ms). Moves the window of the inputs
 * in [ilo, ihi) to step t: the spikes of step t - H leave it (into t_old), those of step t
 * (`idx`) enter. */
static void window_advance(uint64_t *mask, float *t_old, const int32_t *idx, int width, int ilo,
                           int ihi, int t, int h, float dt) {
    const uint64_t keep = h >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << h) - 1);
    const float leaving = (float)(t - h) * dt;
    for (int i = ilo; i < ihi; i++) {
        const uint64_t m = mask[i];
        if ((m >> (h - 1)) & 1) t_old[i] = leaving;
        mask[i] = (m << 1) & keep;
    }
    for (int k = 0; k < width; k++) {
        const int src = idx[k];
        if (src >= ilo && src < ihi) mask[src] |= 1;
    }
}

/* Depression touches only the neurons that have fired in the presentation, when they are few:
 * the others' post1 is 0 (a presentation from rest), and W - nu_pre * 0, clipped to [0, w_max],
 * leaves a weight in that range as it is (bit for bit). `over[i]` marks the rows that may hold a
 * weight outside it (after the normalisation, or as loaded), which are depressed whole once
 * (clipped: potentiation and depression keep them in range after that). */
typedef struct {
    const int *active;   /* the neurons that have fired, *n_active of them (the live count) */
    const int *n_active;
    int n;
    char *over; /* [n_inputs] */
} Sparse;

static inline int sparse_row(const Sparse *sp, int i) {
    return *sp->n_active * 4 < sp->n && !sp->over[i];
}

/* 1 where every weight of `row` [n] lies in [0, w_max] (none NaN). */
static int row_in_range(const float *row, int n, float w_max) {
    int good = 0; /* an integer count, no branch: the loop vectorises */
    for (int j = 0; j < n; j++) good += (row[j] >= 0.0f) & (row[j] <= w_max);
    return good == n;
}

/* The depression of the input spikes of step e (`rows`: the inputs that spiked, each once),
 * applied at step e + H - 1 to the neurons in [lo, hi):
 * W[i, j] <- clip(W[i, j] - nu_pre * post1 at step e + d[i, j], 0, w_max) (p1at[a]: post1 of
 * those neurons at the step that is a mod H, rows of `p1hist` [H, hi - lo]). With AVX-512, post1
 * of 16 synapses by one gather. */
static void depress_delayed(float *w, size_t stride, const uint8_t *delays, float *const *p1at,
                            const float *p1hist, const int32_t *rows, int n_rows, int n, int e,
                            int h, float nu_pre, float w_max, const Sparse *sp, int lo, int hi) {
    float *const *from = p1at + e % h;
    for (int k = 0; k < n_rows; k++) {
        const int src = rows[k];
        float *row = w + (size_t)src * stride;
        const uint8_t *d = delays + (size_t)src * n;
        if (sparse_row(sp, src)) { /* post1 is 0 at every step for the neurons not listed */
            for (int a = 0; a < *sp->n_active; a++) {
                const int j = sp->active[a];
                const float x = row[j] - nu_pre * from[d[j]][j - lo];
                row[j] = x < 0.0f ? 0.0f : (x > w_max ? w_max : x);
            }
            continue;
        }
        sp->over[src] = 0; /* clipped below */
        int j = lo;
#if defined(__AVX512F__)
        const __m512 nu = _mm512_set1_ps(nu_pre), zero = _mm512_setzero_ps();
        const __m512 top = _mm512_set1_ps(w_max);
        for (; j + 16 <= hi; j += 16) {
            const __m512i off = ring_offsets(d, j, e % h, h, hi - lo, lo);
            const __m512 p1 = _mm512_i32gather_ps(off, p1hist, 4);
            const __m512 x = _mm512_sub_ps(_mm512_loadu_ps(row + j), _mm512_mul_ps(nu, p1));
            /* x < 0 -> 0, x > w_max -> w_max, as the scalar line below (NaN passes through) */
            __m512 y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, zero);
            y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, top, _CMP_GT_OQ), y, top);
            _mm512_storeu_ps(row + j, y);
        }
#else
        (void)p1hist;
#endif
        for (; j < hi; j++) {
            const float x = row[j] - nu_pre * from[d[j]][j - lo];
            row[j] = x < 0.0f ? 0.0f : (x > w_max ? w_max : x);
        }
    }
}

/* The potentiation of column j at its spike at step t, each synapse's pre trace read d[i, j]
 * steps in the past: the last spike of input i at or before step t - d[i, j] is the lowest set
 * bit of mask[i] >> d[i, j], or else t_old[i]. */
static void potentiate_delayed(float *w, size_t stride, const uint8_t *delays,
                               const uint64_t *mask, const float *t_old, int n_inputs, int n, int j,
                               int t, float dt, float p2, float nu_post, float tau_pre,
                               float w_max) {
    float *col = w + j;
    for (int i = 0; i < n_inputs; i++) {
        const int d = delays[(size_t)i * n + j];
        const uint64_t m = mask[i] >> d;
        const float since = m ? (float)__builtin_ctzll(m) * dt : (float)(t - d) * dt - t_old[i];
        const float pre = nu_post * exp_f(-since / tau_pre);
        const float x = col[(size_t)i * stride] + pre * p2;
        col[(size_t)i * stride] = x < 0.0f ? 0.0f : (x > w_max ? w_max : x);
    }
}

/* Threads: a presentation of a large layer runs on `threads` threads, each stepping the neurons
 * of its own range [lo, hi) (their columns of W, rings of their own): the same arithmetic per
 * neuron and per weight as one thread, so the same bits. Two points per step join them: the
 * inhibitory spike count of the whole layer (hollow inhibition), and each input's spike window,
 * last spike time and potentiation factor (each thread moves those of its share of the inputs;
 * the potentiation reads every input's). The barrier spins a little, then yields its core
 * (another thread of the process may be drawing input spikes, or another process running). */
#define MAX_THREADS 16

typedef struct {
    int count, sense, threads;
} Barrier;

static void barrier_wait(Barrier *b, int *sense) {
    if (b->threads < 2) return;
    *sense = !*sense;
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == b->threads) {
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->sense, *sense, __ATOMIC_RELEASE);
        return;
    }
    for (int spins = 0; __atomic_load_n(&b->sense, __ATOMIC_ACQUIRE) != *sense; spins++) {
        if (spins < 256) {
#if defined(__SSE__)
            _mm_pause();
#endif
        } else {
            sched_yield();
        }
    }
}

/* One presentation: the arguments, the arrays every thread shares (each writes only its own
 * neurons' or its own inputs' entries), and what each thread tells the others. */
typedef struct {
    const int32_t *slots;
    int shown, steps, width, n_inputs, n, h;
    size_t stride; /* of W's rows (>= n) */
    float *w, *theta, *state, *counts;
    const float *exc_c, *inh_c, *cc;
    const uint8_t *delays;
    Layer exc, inh;
    float *drive, *thr, *s_e, *s_i, *post1, *post2, *acc, *theta0, *colsum, *last_pre, *pre;
    float *ring[MAX_THREADS]; /* each thread's rings, the drive's then post1's: [H, hi - lo] */
    uint64_t *mask;
    int *active, *fired;
    int32_t *rows; /* [threads, n_inputs + width + 1]: each thread's inputs to depress */
    int *seen;     /* [threads, n_inputs]: the step each input was last listed in */
    char *is_active, *over; /* over: [threads, n_inputs] */
    int threads, go, lo[MAX_THREADS], hi[MAX_THREADS]; /* go: 1 start, -1 do not */
    int ilo[MAX_THREADS], ihi[MAX_THREADS];             /* each thread's inputs */
    struct {
        int fired, inh;
        char pad[56]; /* one cache line per thread */
    } told[MAX_THREADS];
    char pad[64];
    Barrier barrier;
} Run;

typedef struct {
    Run *run;
    int tid;
} Part;

/* A thread's part of the inputs between the two joins of step t: moves the input window of
 * its inputs (with delays), records its inputs' spike times and their potentiation factor pre
 * when a neuron fired (without), and lists into `rows` the inputs to depress, each once (an
 * input that spikes twice in a step is depressed once: its row is written, not accumulated, as
 * by TensorFlow's scatter); every thread lists the same. With delays `*e` is the step whose
 * spikes are depressed. Returns how many are listed. */
static int inputs_of_step(Run *R, int tid, int t, int any_fired, int32_t *rows, int *seen,
                          int *e) {
    const int width = R->width, p_rows = R->n_inputs, h = R->h;
    const int ilo = R->ilo[tid], ihi = R->ihi[tid];
    const float dt = R->cc[C_DT], now = (float)t * dt;
    const int32_t *idx = R->slots + (size_t)(t < R->shown ? t : 0) * width;
    const int in_width = t < R->shown ? width : 0;
    int n_rows = 0;
    if (R->delays) {
        window_advance(R->mask, R->last_pre, idx, in_width, ilo, ihi, t, h, dt);
        *e = t - (h - 1);
        if (*e < 0 || *e >= R->shown) return 0;
        const int32_t *spiked = R->slots + (size_t)*e * width;
        for (int k = 0; k < width; k++) {
            const int src = spiked[k];
            if (src < 0 || src >= p_rows || seen[src] == *e) continue;
            seen[src] = *e;
            rows[n_rows++] = src;
        }
        return n_rows;
    }
    for (int k = 0; k < in_width; k++) {
        const int src = idx[k];
        if (src < 0 || src >= p_rows || seen[src] == t) continue;
        seen[src] = t;
        rows[n_rows++] = src;
        if (src >= ilo && src < ihi) R->last_pre[src] = now;
    }
    if (any_fired) {
        const float nu_post = R->cc[C_NU_POST], tau_pre = R->cc[C_TAU_PRE];
        for (int i = ilo; i < ihi; i++)
            R->pre[i] = nu_post * exp_f((R->last_pre[i] - now) / tau_pre);
    }
    return n_rows;
}

/* The presentation of one thread's neurons [lo, hi); see present(). */
static void present_part(Run *R, int tid) {
    const int lo = R->lo[tid], hi = R->hi[tid], m = hi - lo, n = R->n, h = R->h;
    const int p_rows = R->n_inputs, shown = R->shown, width = R->width;
    const size_t stride = R->stride;
    const float *cc = R->cc, *exc_c = R->exc_c, *inh_c = R->inh_c;
    const uint8_t *delays = R->delays;
    float *w = R->w, *theta = R->theta, *state = R->state, *counts = R->counts;
    float *drive = R->drive, *thr = R->thr, *s_e = R->s_e, *s_i = R->s_i;
    float *post1 = R->post1, *post2 = R->post2, *acc = R->acc, *theta0 = R->theta0;
    float *colsum = R->colsum;
    const float dt = cc[C_DT], w_ei = cc[C_W_EI], w_ie = cc[C_W_IE], w_max = cc[C_W_MAX];
    const float nu_pre = cc[C_NU_PRE], tau_pre = cc[C_TAU_PRE];
    const float nu_post = cc[C_NU_POST];
    const float dec1 = cc[C_DEC_POST1], dec2 = cc[C_DEC_POST2];
    const float theta_rate = cc[C_THETA_RATE], theta_plus = cc[C_THETA_PLUS];
    const int inhibition = cc[C_INHIBITION] != 0.0f, exact = cc[C_THETA_EXACT] != 0.0f;
    const float base = exc_c[L_V_THRESH];
    Layer exc_part = {R->exc.v + lo, R->exc.ge + lo, R->exc.gi + lo, R->exc.since + lo};
    Layer inh_part = {R->inh.v + lo, R->inh.ge + lo, R->inh.gi + lo, R->inh.since + lo};
    int sense = 0;

    /* active: this thread's neurons that have fired in this presentation, in order of their
     * first spike (n_active of them; the first n_active_inh / n_active_post had fired before
     * the current step's inhibitory update / trace decay); fired: this step's spikes */
    int *active = R->active + lo, *fired = R->fired + lo;
    char *over = R->over + (size_t)tid * p_rows;
    int32_t *rows = R->rows + (size_t)tid * (p_rows + width + 1);
    /* with delays this thread's rings, in memory of its own (pages shared by two threads' rings
     * cost half the gain of the second thread at 6,400 neurons: each core's prefetches took the
     * other's cache lines) */
    float *ring = R->ring[tid], *p1hist = ring ? ring + (size_t)h * m : NULL;
    float *at[128], *p1at[128];
    if (delays) ring_rows(at, ring, h, m), ring_rows(p1at, p1hist, h, m);
    int *seen = R->seen + (size_t)tid * p_rows;
    int n_rows = 0, e = -1;
    int n_active = 0, n_active_inh = 0, n_active_post = 0;
    if (state || (inhibition && inh_c[L_V_REST] > inh_c[L_V_THRESH]))
        n_active = n_active_inh = n_active_post = activate_all(active, R->is_active, lo, hi);

    /* Diehl & Cook's normalisation: each column scaled to sum to weight_sum. */
    if (cc[C_WEIGHT_SUM] > 0.0f) {
        for (int i = 0; i < p_rows; i++) {
            const float *row = w + (size_t)i * stride;
            for (int j = lo; j < hi; j++) colsum[j] += row[j];
        }
        for (int j = lo; j < hi; j++)
            colsum[j] = cc[C_WEIGHT_SUM] / (colsum[j] > 1e-12f ? colsum[j] : 1e-12f);
        for (int i = 0; i < p_rows; i++) { /* each row marked while it is in the cache */
            float *row = w + (size_t)i * stride;
            for (int j = lo; j < hi; j++) row[j] = row[j] * colsum[j];
            over[i] = !row_in_range(row + lo, m, w_max);
        }
    } else {
        for (int i = 0; i < p_rows; i++)
            over[i] = !row_in_range(w + (size_t)i * stride + lo, m, w_max);
    }
    Sparse sp = {active, &n_active, m, over};
    float *const carried[10] = {R->exc.v, R->exc.ge, R->exc.gi, R->exc.since, R->inh.v,
                                R->inh.ge, R->inh.gi, R->inh.since, post1,    post2};
    if (state) {
        for (int k = 0; k < 10; k++)
            memcpy(carried[k] + lo, state + (size_t)k * n + lo, sizeof(float) * m);
    } else {
        layer_rest(exc_c, &exc_part, m);
        layer_rest(inh_c, &inh_part, m);
    }
    for (int j = lo; j < hi; j++) {
        theta0[j] = theta[j];
        acc[j] = exact ? 0.0f : theta[j];
        counts[j] = 0.0f;
    }

    for (int t = 0; t < R->steps; t++) {
        const int32_t *idx = R->slots + (size_t)(t < shown ? t : 0) * width;
        const int in_width = t < shown ? width : 0; /* the rest: no input */
        const int r = delays ? t % h : 0;
        float *in = step_drive(drive, at, ring, w, stride, delays, idx, in_width, p_rows, n, t, h,
                               lo, hi);
        if (exact) {
            const float decay = exp_f(-(float)t * theta_rate);
            for (int j = lo; j < hi; j++) thr[j] = base + decay * (theta0[j] + acc[j]);
        } else {
            for (int j = lo; j < hi; j++) thr[j] = base + acc[j];
        }
        const int n_fired = layer_step(exc_c, &exc_part, in, thr + lo, dt, s_e + lo, m);
        if (delays) memset(in, 0, sizeof(float) * m);
        const int n_new =
            n_fired ? note_fired(s_e, lo, hi, fired, active, R->is_active, &n_active) : 0;
        R->told[tid].fired = n_fired;
        R->told[tid].inh = inhibition ? inhibit_step(inh_c, &R->inh, active, n_active_inh, fired,
                                                     n_new, w_ei, dt, s_i, lo, hi)
                                      : 0;
        barrier_wait(&R->barrier, &sense); /* the whole layer's spikes of this step are known */
        int any_fired = 0, n_inh = 0;
        for (int k = 0; k < R->threads; k++) any_fired |= R->told[k].fired, n_inh += R->told[k].inh;
        if (inhibition) {
            inhibit_apply(&R->exc, active, n_active_inh, n_inh, w_ie, s_i, lo, hi);
            n_active_inh = n_active;
        }
        if (exact) {
            const float grow = theta_plus * exp_f((float)(t + 1) * theta_rate);
            if (n_fired)
                for (int j = lo; j < hi; j++) acc[j] = acc[j] + grow * s_e[j];
        } else {
            const float decay = cc[C_THETA_DECAY];
            for (int j = lo; j < hi; j++) acc[j] = acc[j] * decay + theta_plus * s_e[j];
        }
        /* postsynaptic traces are 0 until their neuron's first spike; all of them decay in one
         * vector loop once every neuron is active */
        if (n_active_post == m) {
            for (int j = lo; j < hi; j++)
                post1[j] = post1[j] * dec1, post2[j] = post2[j] * dec2;
        } else {
            for (int a = 0; a < n_active_post; a++) {
                const int j = active[a];
                post1[j] = post1[j] * dec1;
                post2[j] = post2[j] * dec2;
            }
        }
        /* with delays, post1 as this step's arrivals see it */
        if (delays) memcpy(p1at[r], post1 + lo, sizeof(float) * m);
        n_rows = inputs_of_step(R, tid, t, any_fired, rows, seen, &e);
        barrier_wait(&R->barrier, &sense); /* every input's window and pre factor are moved */
        if (delays) {
            if (n_rows) /* the spikes of step t - H + 1, through each synapse's delay */
                depress_delayed(w, stride, delays, p1at, p1hist, rows, n_rows, n, e, h, nu_pre,
                                w_max, &sp, lo, hi);
        } else {
            for (int k = 0; k < n_rows; k++) {
                float *row = w + (size_t)rows[k] * stride;
                if (sparse_row(&sp, rows[k])) { /* post1 = 0 but for the neurons listed */
                    for (int a = 0; a < n_active; a++) {
                        const int j = active[a];
                        const float x = row[j] - nu_pre * post1[j];
                        row[j] = x < 0.0f ? 0.0f : (x > w_max ? w_max : x);
                    }
                    continue;
                }
                over[rows[k]] = 0; /* clipped here */
                for (int j = lo; j < hi; j++) {
                    float x = row[j] - nu_pre * post1[j];
                    row[j] = x < 0.0f ? 0.0f : (x > w_max ? w_max : x);
                }
            }
        }
        if (!n_fired) {
            n_active_post = n_active;
            continue;
        }
        if (t < shown)
            for (int j = lo; j < hi; j++) counts[j] = counts[j] + s_e[j];
        if (delays) {
            for (int k = 0; k < n_new; k++)
                potentiate_delayed(w, stride, delays, R->mask, R->last_pre, p_rows, n, fired[k],
                                   t, dt, post2[fired[k]], nu_post, tau_pre, w_max);
        } else {
            const float *pre = R->pre;
            for (int k = 0; k < n_new; k++) {
                const int j = fired[k];
                const float p2 = post2[j];
                float *col = w + j;
                for (int i = 0; i < p_rows; i++) {
                    float x = col[(size_t)i * stride] + pre[i] * p2;
                    col[(size_t)i * stride] = x < 0.0f ? 0.0f : (x > w_max ? w_max : x);
                }
            }
        }
        for (int k = 0; k < n_new; k++) post1[fired[k]] = post2[fired[k]] = 1.0f;
        n_active_post = n_active;
    }
    const float end = cc[C_THETA_END];
    for (int j = lo; j < hi; j++)
        theta[j] = exact ? end * (theta0[j] + acc[j]) : (end == 1.0f ? acc[j] : acc[j] * end);
    if (state)
        for (int k = 0; k < 10; k++)
            memcpy(state + (size_t)k * n + lo, carried[k] + lo, sizeof(float) * m);
}

static void *present_thread(void *arg) {
    const Part *part = (const Part *)arg;
    int go;
    while ((go = __atomic_load_n(&part->run->go, __ATOMIC_ACQUIRE)) == 0) sched_yield();
    if (go < 0) return NULL;
    const FpMode mode = flush_denormals(); /* per thread, as the caller's */
    present_part(part->run, part->tid);
    restore_fp_mode(mode);
    return NULL;
}

/* One presentation with learning; see the file's comment. `slots` holds the `shown` steps of
 * input; the presentation runs `steps` steps (more than `shown`: a simulated rest, no input, its
 * spikes not counted). `state` NULL: every presentation from rest; else the per-sample state
 * carried from the last presentation (encoding.rest = "simulate"), read and written back:
 * excitatory v, ge, gi, since, inhibitory v, ge, gi, since, post1, post2 ([n] each), then the
 * last input spike times [n_inputs] (written back as seen from the next presentation, `steps`
 * dt later). `delays` [n_inputs, n] in steps below `h` (1 <= h <= 64), or NULL: none; with
 * delays `steps` covers at least h - 1 steps after the shown ones. `threads` (1 to 16) share the
 * neurons in ranges of multiples of 16 (fewer when the layer is small); the results do not
 * depend on it. Returns 0, or -1 when memory ran out or the arguments do not fit (a thread that
 * cannot start leaves the whole layer to one thread). */
static int present(const int32_t *slots, int shown, int steps, int width, int n_inputs, float *w,
                   int stride, float *theta, int n, const float *exc_c, const float *inh_c,
                   const float *cc, float *state, const uint8_t *delays, int h, float *counts,
                   int threads) {
    if (n <= 0 || n_inputs <= 0 || shown > steps || threads < 1 || stride < n) return -1;
    if (delays && (h < 1 || h > 64 || steps < shown + h - 1)) return -1;
    const int blocks = (n + 15) / 16;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > blocks) threads = blocks;
    const int p_rows = n_inputs;
    Run R;
    memset(&R, 0, sizeof R);
    R.slots = slots, R.shown = shown, R.steps = steps, R.width = width, R.n_inputs = n_inputs;
    R.n = n, R.h = h, R.w = w, R.stride = (size_t)stride, R.theta = theta, R.state = state;
    R.counts = counts;
    R.exc_c = exc_c, R.inh_c = inh_c, R.cc = cc, R.delays = delays, R.threads = threads;
    R.barrier.threads = threads;
    /* each thread's neurons start at a multiple of 1,024 (a page of floats: no page of a
     * per-neuron array, nor of a row of W padded to such a stride, holds two threads' neurons)
     * where that moves the boundary by at most 5 % of a share, else at a multiple of 16 */
    for (int k = 0; k < threads; k++) {
        R.lo[k] = k == 0 ? 0 : R.hi[k - 1];
        const double ideal = (double)n * (k + 1) / threads, share = (double)n / threads;
        const int page = (int)(ideal / 1024.0 + 0.5) * 1024;
        const int vec = (int)((long)blocks * (k + 1) / threads) * 16; /* > lo: threads <= blocks */
        const double off = page > ideal ? page - ideal : ideal - page;
        R.hi[k] = k == threads - 1 ? n : (off <= 0.05 * share && page > R.lo[k] ? page : vec);
        R.ilo[k] = (int)((long)p_rows * k / threads);
        R.ihi[k] = (int)((long)p_rows * (k + 1) / threads);
    }
    /* the per-neuron arrays, each starting on a page of its own */
    const size_t np = ((size_t)n + 1023) / 1024 * 1024;
    const size_t buf_bytes = sizeof(float) * (np * 17 + (size_t)p_rows * 2);
    float *buf = (float *)aligned_alloc(4096, (buf_bytes + 4095) / 4096 * 4096);
    if (buf) memset(buf, 0, buf_bytes);
    R.active = (int *)calloc((size_t)n * 2, sizeof(int));
    R.is_active = (char *)calloc((size_t)n, 1);
    R.over = (char *)malloc((size_t)p_rows * threads);
    R.rows = (int32_t *)malloc(sizeof(int32_t) * ((size_t)p_rows + width + 1) * threads);
    R.seen = (int *)malloc(sizeof(int) * (size_t)p_rows * threads);
    int ok = buf && R.active && R.is_active && R.over && R.rows && R.seen;
    if (ok) {
        R.exc = (Layer){buf, buf + np, buf + 2 * np, buf + 3 * np};
        R.inh = (Layer){buf + 4 * np, buf + 5 * np, buf + 6 * np, buf + 7 * np};
        R.drive = buf + 8 * np, R.thr = buf + 9 * np, R.s_e = buf + 10 * np;
        R.s_i = buf + 11 * np, R.post1 = buf + 12 * np, R.post2 = buf + 13 * np;
        R.acc = buf + 14 * np, R.theta0 = buf + 15 * np, R.colsum = buf + 16 * np;
        R.last_pre = buf + 17 * np, R.pre = R.last_pre + p_rows;
        R.fired = R.active + n;
        if (state)
            memcpy(R.last_pre, state + (size_t)10 * n, sizeof(float) * p_rows);
        else
            for (int i = 0; i < p_rows; i++) R.last_pre[i] = -1e9f;
        for (size_t i = 0; i < (size_t)p_rows * threads; i++) R.seen[i] = -1;
    }
    if (ok && delays) { /* the input spike window (the last spike times before it: last_pre) */
        R.mask = (uint64_t *)calloc((size_t)p_rows, sizeof(uint64_t));
        ok = R.mask != NULL;
    }
    pthread_t helpers[MAX_THREADS];
    Part parts[MAX_THREADS];
    int started = 1;
    if (ok) {
        for (; started < threads; started++) {
            parts[started] = (Part){&R, started};
            if (pthread_create(&helpers[started], NULL, present_thread, &parts[started])) break;
        }
        if (started < threads) { /* a thread did not start: one thread steps every neuron */
            __atomic_store_n(&R.go, -1, __ATOMIC_RELEASE);
            for (int k = 1; k < started; k++) pthread_join(helpers[k], NULL);
            started = 1;
            R.threads = R.barrier.threads = 1, R.lo[0] = 0, R.hi[0] = n;
            R.ilo[0] = 0, R.ihi[0] = p_rows;
        }
    }
    for (int k = 0; ok && delays && k < R.threads; k++) { /* each thread's rings, page-aligned */
        const size_t bytes = sizeof(float) * (size_t)h * (R.hi[k] - R.lo[k]) * 2;
        R.ring[k] = (float *)aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
        ok = R.ring[k] != NULL;
        if (ok) memset(R.ring[k], 0, bytes);
    }
    __atomic_store_n(&R.go, ok ? 1 : -1, __ATOMIC_RELEASE);
    if (ok) present_part(&R, 0);
    for (int k = 1; k < started; k++) pthread_join(helpers[k], NULL);
    if (ok && state) {
        const float span = cc[C_SPAN];
        for (int i = 0; i < p_rows; i++) state[(size_t)10 * n + i] = R.last_pre[i] - span;
    }
    free(buf), free(R.active), free(R.is_active), free(R.over), free(R.rows), free(R.seen);
    for (int k = 0; k < MAX_THREADS; k++) free(R.ring[k]);
    free(R.mask);
    return ok ? 0 : -1;
}

/* Presentations with learning off (inference), one digit after another: the excitatory spike
 * counts of each digit, from rest, with weights and theta fixed (the program of
 * SpikingNetwork._simulate: drive = sum of the step's W rows, threshold = v_thresh + theta,
 * inhibition weight w_ie). slots [B, T, width]; counts [B, N] (out); `delays` [n_inputs, n]
 * steps below `h` (<= 64), or NULL: none (what would arrive after the last step is not part of
 * the presentation). Returns 0, or -1 when memory ran out or the arguments do not fit. */
static int respond(const int32_t *slots, int n_digits, int steps, int width, int n_inputs,
                   const float *w, const float *theta, int n, const float *exc_c,
                   const float *inh_c, const float *cc, float w_ie, const uint8_t *delays, int h,
                   float *counts) {
    if (n <= 0 || n_digits < 0 || (delays && (h < 1 || h > 64))) return -1;
    float *buf = (float *)calloc((size_t)n * (12 + (delays ? (size_t)h : 0)), sizeof(float));
    int *active = (int *)calloc((size_t)n * 2, sizeof(int));
    char *is_active = (char *)calloc((size_t)n, 1);
    if (!buf || !active || !is_active) {
        free(buf), free(active), free(is_active);
        return -1;
    }
    Layer exc = {buf, buf + n, buf + 2 * n, buf + 3 * n};
    Layer inh = {buf + 4 * n, buf + 5 * n, buf + 6 * n, buf + 7 * n};
    float *drive = buf + 8 * n, *thr = buf + 9 * n, *s_e = buf + 10 * n, *s_i = buf + 11 * n;
    float *ring = buf + 12 * n, *at[128]; /* [h, n] with delays */
    if (delays) ring_rows(at, ring, h, n);
    int *fired = active + n;
    const float dt = cc[C_DT], w_ei = cc[C_W_EI];
    const int inhibition = cc[C_INHIBITION] != 0.0f;
    const int all_active = inhibition && inh_c[L_V_REST] > inh_c[L_V_THRESH];
    for (int j = 0; j < n; j++) thr[j] = exc_c[L_V_THRESH] + theta[j];
    for (int b = 0; b < n_digits; b++) {
        float *count = counts + (size_t)b * n;
        layer_rest(exc_c, &exc, n);
        layer_rest(inh_c, &inh, n);
        int n_active = 0, n_active_inh = 0;
        memset(is_active, 0, (size_t)n);
        if (all_active) n_active = n_active_inh = activate_all(active, is_active, 0, n);
        for (int j = 0; j < n; j++) count[j] = 0.0f;
        if (delays) memset(ring, 0, sizeof(float) * (size_t)h * n);
        for (int t = 0; t < steps; t++) {
            const int32_t *idx = slots + ((size_t)b * steps + t) * width;
            float *in = step_drive(drive, at, ring, w, (size_t)n, delays, idx, width, n_inputs, n,
                                   t, h, 0, n);
            const int n_fired = layer_step(exc_c, &exc, in, thr, dt, s_e, n);
            if (delays) memset(in, 0, sizeof(float) * n);
            int n_new = 0;
            if (n_fired) {
                for (int j = 0; j < n; j++) count[j] = count[j] + s_e[j];
                n_new = note_fired(s_e, 0, n, fired, active, is_active, &n_active);
            }
            if (!inhibition) continue;
            inhibit(inh_c, &inh, &exc, active, n_active_inh, fired, n_new, w_ei, w_ie, dt, s_i, n);
            n_active_inh = n_active;
        }
    }
    free(buf), free(active), free(is_active);
    return 0;
}

/* The entry points: present and respond with denormals flushed to zero. */
int stdp_present(const int32_t *slots, int shown, int steps, int width, int n_inputs, float *w,
                 int stride, float *theta, int n, const float *exc_c, const float *inh_c,
                 const float *cc, float *state, const uint8_t *delays, int h, float *counts,
                 int threads) {
    const FpMode mode = flush_denormals();
    const int rc = present(slots, shown, steps, width, n_inputs, w, stride, theta, n, exc_c,
                           inh_c, cc, state, delays, h, counts, threads);
    restore_fp_mode(mode);
    return rc;
}

int stdp_respond(const int32_t *slots, int n_digits, int steps, int width, int n_inputs,
                 const float *w, const float *theta, int n, const float *exc_c,
                 const float *inh_c, const float *cc, float w_ie, const uint8_t *delays, int h,
                 float *counts) {
    const FpMode mode = flush_denormals();
    const int rc = respond(slots, n_digits, steps, width, n_inputs, w, theta, n, exc_c, inh_c, cc,
                           w_ie, delays, h, counts);
    restore_fp_mode(mode);
    return rc;
}
