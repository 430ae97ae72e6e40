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
static int activate_all(int *active, char *is_active, int n) {
    for (int j = 0; j < n; j++) active[j] = j, is_active[j] = 1;
    return n;
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
                     int n_inputs, int n) {
    const float *rows[width > 0 ? width : 1];
    int m = 0;
    for (int k = 0; k < width; k++) { /* no branch: how many slots hold a spike varies */
        const int src = idx[k], valid = src >= 0 && src < n_inputs;
        rows[m] = w + (size_t)(valid ? src : 0) * n;
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

/* The neurons that fired (s_e) into `fired`, ascending; a neuron joins `active` at its first
 * spike of the presentation. Returns how many fired. */
static int note_fired(const float *s_e, int n, int *fired, int *active, char *is_active,
                      int *n_active) {
    int n_new = 0;
    for (int j = 0; j < n; j++)
        if (s_e[j] != 0.0f) {
            fired[n_new++] = j;
            if (!is_active[j]) {
                is_active[j] = 1;
                active[(*n_active)++] = j;
            }
        }
    return n_new;
}

/* The inhibitory layer's step, then the wiring: inh.ge += w_ei at this step's excitatory spikes
 * `fired` (one-to-one), exc.gi += w_ie (sum(s_i) - s_i) (hollow). Only the first `n_stepped`
 * neurons of `active` are stepped: an inhibitory neuron whose partner has not fired in this
 * presentation is at rest (v = v_rest, no conductance), and its step changes nothing. When
 * all are (a carried state, or every neuron has fired), one vector loop steps the whole layer:
 * neurons step independently, so the order does not matter. `s_i` is all zeros on entry and on
 * return. */
static void inhibit(const float *inh_c, Layer *inh, Layer *exc, const int *active, int n_stepped,
                    const int *fired, int n_fired, float w_ei, float w_ie, float dt, float *s_i,
                    int n) {
    const int exp_i = inh_c[L_EXPONENTIAL] != 0.0f, hold_i = inh_c[L_HOLD_V] != 0.0f;
    const float thr_inh = inh_c[L_V_THRESH];
    const Consts k_inh = consts_of(inh_c);
    int n_inh = 0;
    if (n_stepped == n)
        n_inh = uniform_step(inh_c, inh, dt, s_i, n);
    for (int a = 0; a < n_stepped && n_stepped < n; a++) {
        const int j = active[a];
        float o[4];
        const float f = neuron_step(k_inh, inh->v[j], inh->ge[j], inh->gi[j], inh->since[j], 0.0f,
                                    thr_inh, dt, exp_i, hold_i, o);
        inh->v[j] = o[0], inh->ge[j] = o[1], inh->gi[j] = o[2], inh->since[j] = o[3];
        s_i[j] = f;
        n_inh += f != 0.0f;
    }
    for (int m = 0; m < n_fired; m++) inh->ge[fired[m]] = inh->ge[fired[m]] + w_ei * 1.0f;
    if (n_inh) {
        const float total = (float)n_inh;
        for (int j = 0; j < n; j++) exc->gi[j] = exc->gi[j] + w_ie * (total - s_i[j]);
        for (int a = 0; a < n_stepped; a++) s_i[active[a]] = 0.0f;
    }
}

#if defined(__AVX512F__)
/* The places of synapses j .. j + 15 in an [H, N] ring whose rows are steps mod H, for the step
 * r + d (r = the current row): ((r + d[j]) mod H) N + j. */
static inline __m512i ring_offsets(const uint8_t *d, int j, int r, int h, int n) {
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i vh = _mm512_set1_epi32(h);
    __m512i a = _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)(d + j))),
                                 _mm512_set1_epi32(r));
    a = _mm512_mask_sub_epi32(a, _mm512_cmpge_epi32_mask(a, vh), a, vh);
    return _mm512_add_epi32(_mm512_mullo_epi32(a, _mm512_set1_epi32(n)),
                            _mm512_add_epi32(_mm512_set1_epi32(j), lanes));
}
#endif

/* Input delays (see the file's comment). `ring` [H, N]: the drive arriving at each of the next H
 * steps, row (t mod H) for step t; `at[a]` points at row (a mod H), a < 2 H (no division in the
 * loop). Adds the W rows of step t's input spikes `idx` (r = t mod H), each weight into the row
 * of its arrival step. With AVX-512, 16 synapses at a time by gather and scatter: their 16
 * addresses lie in 16 different columns, so no two collide, and each sum is the scalar one. */
static void ring_add(float *const *at, float *ring, const float *w, const uint8_t *delays,
                     const int32_t *idx, int width, int n_inputs, int n, int r, int h) {
    for (int k = 0; k < width; k++) {
        const int src = idx[k];
        if (src < 0 || src >= n_inputs) continue;
        const float *row = w + (size_t)src * n;
        const uint8_t *d = delays + (size_t)src * n;
        int j = 0;
#if defined(__AVX512F__)
        for (; j + 16 <= n; j += 16) {
            const __m512i off = ring_offsets(d, j, r, h, n);
            const __m512 sum = _mm512_add_ps(_mm512_i32gather_ps(off, ring, 4),
                                             _mm512_loadu_ps(row + j));
            _mm512_i32scatter_ps(ring, off, sum, 4);
        }
#else
        (void)ring, (void)h;
#endif
        float *const *from = at + r;
        for (; j < n; j++) {
            float *dst = from[d[j]];
            dst[j] = dst[j] + row[j];
        }
    }
}

/* The drive that arrives at step t: the sum of the step's input rows (into `drive`), or with
 * delays the ring's row of step t once the step's rows have joined the ring (the caller clears
 * that row after the step). */
static float *step_drive(float *drive, float *const *at, float *ring, const float *w,
                         const uint8_t *delays, const int32_t *idx, int width, int n_inputs,
                         int n, int t, int h) {
    if (!delays) {
        sum_rows(drive, w, idx, width, n_inputs, n);
        return drive;
    }
    ring_add(at, ring, w, delays, idx, width, n_inputs, n, t % h, h);
    return at[t % h];
}

/* at[a] = base + (a mod h) n for a < 2 h */
static void ring_rows(float **at, float *base, int h, int n) {
    for (int a = 0; a < 2 * h; a++) at[a] = base + (size_t)(a % h) * n;
}

/* Delayed STDP's record of the input spikes: bit k of mask[i] is a spike of input i at step
 * t - k (k < H); t_old[i] its last spike before those steps (ms). Moves the window to step t:
 * the spikes of step t - H leave it (into t_old), those of step t (`idx`) enter. */
static void window_advance(uint64_t *mask, float *t_old, const int32_t *idx, int width,
                           int n_inputs, int t, int h, float dt) {
    const uint64_t keep = h >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << h) - 1);
    const float leaving = (float)(t - h) * dt;
    for (int i = 0; i < n_inputs; i++) {
        const uint64_t m = mask[i];
        if ((m >> (h - 1)) & 1) t_old[i] = leaving;
        mask[i] = (m << 1) & keep;
    }
    for (int k = 0; k < width; k++) {
        const int src = idx[k];
        if (src >= 0 && src < n_inputs) mask[src] |= 1;
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

/* The depression of the input spikes of step e (`idx`), applied at step e + H - 1:
 * W[i, j] <- clip(W[i, j] - nu_pre * post1 at step e + d[i, j], 0, w_max) (p1at[a]: post1 of
 * the step that is a mod H, rows of `p1hist`), once per input however many times it spiked in
 * the step (`done[i]` = e once applied). With AVX-512, post1 of 16 synapses by one gather. */
static void depress_delayed(float *w, const uint8_t *delays, float *const *p1at,
                            const float *p1hist, const int32_t *idx, int width, int n_inputs,
                            int n, int e, int h, float nu_pre, float w_max, int *done,
                            const Sparse *sp) {
    float *const *from = p1at + e % h;
    for (int k = 0; k < width; k++) {
        const int src = idx[k];
        if (src < 0 || src >= n_inputs || done[src] == e) continue;
        done[src] = e;
        float *row = w + (size_t)src * n;
        const uint8_t *d = delays + (size_t)src * n;
        if (sparse_row(sp, src)) { /* post1 is 0 at every step for the neurons not listed */
            for (int a = 0; a < *sp->n_active; a++) {
                const int j = sp->active[a];
                const float x = row[j] - nu_pre * from[d[j]][j];
                row[j] = x < 0.0f ? 0.0f : (x > w_max ? w_max : x);
            }
            continue;
        }
        sp->over[src] = 0; /* clipped below */
        int j = 0;
#if defined(__AVX512F__)
        const __m512 nu = _mm512_set1_ps(nu_pre), lo = _mm512_setzero_ps();
        const __m512 hi = _mm512_set1_ps(w_max);
        for (; j + 16 <= n; j += 16) {
            const __m512i off = ring_offsets(d, j, e % h, h, n);
            const __m512 p1 = _mm512_i32gather_ps(off, p1hist, 4);
            const __m512 x = _mm512_sub_ps(_mm512_loadu_ps(row + j), _mm512_mul_ps(nu, p1));
            /* x < 0 -> 0, x > w_max -> w_max, as the scalar line below (NaN passes through) */
            __m512 y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), x, lo);
            y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), y, hi);
            _mm512_storeu_ps(row + j, y);
        }
#else
        (void)p1hist;
#endif
        for (; j < n; j++) {
            const float x = row[j] - nu_pre * from[d[j]][j];
            row[j] = x < 0.0f ? 0.0f : (x > w_max ? w_max : x);
        }
    }
}

/* The potentiation of column j at its spike at step t, each synapse's pre trace read d[i, j]
 * steps in the past: the last spike of input i at or before step t - d[i, j] is the lowest set
 * bit of mask[i] >> d[i, j], or else t_old[i]. */
static void potentiate_delayed(float *w, const uint8_t *delays, const uint64_t *mask,
                               const float *t_old, int n_inputs, int n, int j, int t, float dt,
                               float p2, float nu_post, float tau_pre, float w_max) {
    float *col = w + j;
    for (int i = 0; i < n_inputs; i++) {
        const int d = delays[(size_t)i * n + j];
        const uint64_t m = mask[i] >> d;
        const float since = m ? (float)__builtin_ctzll(m) * dt : (float)(t - d) * dt - t_old[i];
        const float pre = nu_post * exp_f(-since / tau_pre);
        const float x = col[(size_t)i * n] + pre * p2;
        col[(size_t)i * n] = x < 0.0f ? 0.0f : (x > w_max ? w_max : x);
    }
}

/* One presentation with learning; see the file's comment. `slots` holds the `shown` steps of
 * input; the presentation runs `steps` steps (more than `shown`: a simulated rest, no input, its
 * spikes not counted). `state` NULL: every presentation from rest; else the per-sample state
 * carried from the last presentation (encoding.rest = "simulate"), read and written back:
 * excitatory v, ge, gi, since, inhibitory v, ge, gi, since, post1, post2 ([n] each), then the
 * last input spike times [n_inputs] (written back as seen from the next presentation, `steps`
 * dt later). `delays` [n_inputs, n] in steps below `h` (1 <= h <= 64), or NULL: none; with
 * delays `steps` covers at least h - 1 steps after the shown ones. Returns 0, or -1 when memory
 * ran out or the arguments do not fit. */
static int present(const int32_t *slots, int shown, int steps, int width, int n_inputs, float *w,
                   float *theta, int n, const float *exc_c, const float *inh_c, const float *cc,
                   float *state, const uint8_t *delays, int h, float *counts) {
    if (n <= 0 || n_inputs <= 0 || shown > steps) return -1;
    if (delays && (h < 1 || h > 64 || steps < shown + h - 1)) return -1;
    const int p_rows = n_inputs;
    float *buf = (float *)calloc((size_t)n * 17 + (size_t)p_rows * 2, sizeof(float));
    if (!buf) return -1;
    Layer exc = {buf, buf + n, buf + 2 * n, buf + 3 * n};
    Layer inh = {buf + 4 * n, buf + 5 * n, buf + 6 * n, buf + 7 * n};
    float *drive = buf + 8 * n, *thr = buf + 9 * n, *s_e = buf + 10 * n, *s_i = buf + 11 * n;
    float *post1 = buf + 12 * n, *post2 = buf + 13 * n, *acc = buf + 14 * n;
    float *theta0 = buf + 15 * n, *colsum = buf + 16 * n;
    float *last_pre = buf + 17 * n, *pre = last_pre + p_rows;
    const float dt = cc[C_DT], w_ei = cc[C_W_EI], w_ie = cc[C_W_IE], w_max = cc[C_W_MAX];
    const float nu_pre = cc[C_NU_PRE], nu_post = cc[C_NU_POST], tau_pre = cc[C_TAU_PRE];
    const float dec1 = cc[C_DEC_POST1], dec2 = cc[C_DEC_POST2];
    const float theta_rate = cc[C_THETA_RATE], theta_plus = cc[C_THETA_PLUS];
    const int inhibition = cc[C_INHIBITION] != 0.0f, exact = cc[C_THETA_EXACT] != 0.0f;
    const float base = exc_c[L_V_THRESH];

    /* active: the excitatory neurons that have fired in this presentation, in order of their
     * first spike (n_active of them; the first n_active_inh / n_active_post had fired before
     * the current step's inhibitory update / trace decay); fired: this step's spikes */
    int *active = (int *)calloc((size_t)n * 2, sizeof(int));
    char *is_active = (char *)calloc((size_t)n, 1);
    if (!active || !is_active) {
        free(buf), free(active), free(is_active);
        return -1;
    }
    int *fired = active + n;
    char *over = (char *)malloc((size_t)p_rows);
    if (!over) {
        free(buf), free(active), free(is_active);
        return -1;
    }
    /* input delays: the drive ring and post1's [H, N], the input spike window and the step each
     * input was last depressed [n_inputs] (the last spike times before the window: last_pre) */
    float *ring = NULL, *p1hist = NULL, *at[128], *p1at[128];
    uint64_t *mask = NULL;
    int *done = NULL;
    if (delays) {
        ring = (float *)calloc((size_t)h * n * 2, sizeof(float));
        mask = (uint64_t *)calloc((size_t)p_rows, sizeof(uint64_t));
        done = (int *)malloc(sizeof(int) * (size_t)p_rows);
        if (!ring || !mask || !done) {
            free(buf), free(active), free(is_active), free(over), free(ring), free(mask);
            free(done);
            return -1;
        }
        p1hist = ring + (size_t)h * n;
        ring_rows(at, ring, h, n);
        ring_rows(p1at, p1hist, h, n);
        for (int i = 0; i < p_rows; i++) done[i] = -1;
    }
    int n_active = 0, n_active_inh = 0, n_active_post = 0;
    if (state || (inhibition && inh_c[L_V_REST] > inh_c[L_V_THRESH]))
        n_active = n_active_inh = n_active_post = activate_all(active, is_active, n);

    /* Diehl & Cook's normalisation: each column scaled to sum to weight_sum. */
    if (cc[C_WEIGHT_SUM] > 0.0f) {
        for (int i = 0; i < p_rows; i++) {
            const float *row = w + (size_t)i * n;
            for (int j = 0; j < n; j++) colsum[j] += row[j];
        }
        for (int j = 0; j < n; j++)
            colsum[j] = cc[C_WEIGHT_SUM] / (colsum[j] > 1e-12f ? colsum[j] : 1e-12f);
        for (int i = 0; i < p_rows; i++) { /* each row marked while it is in the cache */
            float *row = w + (size_t)i * n;
            for (int j = 0; j < n; j++) row[j] = row[j] * colsum[j];
            over[i] = !row_in_range(row, n, w_max);
        }
    } else {
        for (int i = 0; i < p_rows; i++) over[i] = !row_in_range(w + (size_t)i * n, n, w_max);
    }
    Sparse sp = {active, &n_active, n, over};
    float *const carried[10] = {exc.v, exc.ge, exc.gi, exc.since, inh.v,
                                inh.ge, inh.gi, inh.since, post1, post2};
    if (state) {
        for (int k = 0; k < 10; k++) memcpy(carried[k], state + (size_t)k * n, sizeof(float) * n);
        memcpy(last_pre, state + (size_t)10 * n, sizeof(float) * p_rows);
    } else {
        layer_rest(exc_c, &exc, n);
        layer_rest(inh_c, &inh, n);
        for (int i = 0; i < p_rows; i++) last_pre[i] = -1e9f;
    }
    for (int j = 0; j < n; j++) {
        theta0[j] = theta[j];
        acc[j] = exact ? 0.0f : theta[j];
        counts[j] = 0.0f;
    }

    for (int t = 0; t < steps; t++) {
        const int32_t *idx = slots + (size_t)(t < shown ? t : 0) * width;
        const int in_width = t < shown ? width : 0; /* the rest: no input */
        const float now = (float)t * dt;
        const int r = delays ? t % h : 0;
        float *in = step_drive(drive, at, ring, w, delays, idx, in_width, p_rows, n, t, h);
        if (exact) {
            const float decay = exp_f(-(float)t * theta_rate);
            for (int j = 0; j < n; j++) thr[j] = base + decay * (theta0[j] + acc[j]);
        } else {
            for (int j = 0; j < n; j++) thr[j] = base + acc[j];
        }
        int n_fired = layer_step(exc_c, &exc, in, thr, dt, s_e, n);
        if (delays) memset(in, 0, sizeof(float) * n);
        const int n_new = n_fired ? note_fired(s_e, n, fired, active, is_active, &n_active) : 0;
        if (inhibition) {
            inhibit(inh_c, &inh, &exc, active, n_active_inh, fired, n_new, w_ei, w_ie, dt, s_i, n);
            n_active_inh = n_active;
        }
        if (exact) {
            const float grow = theta_plus * exp_f((float)(t + 1) * theta_rate);
            if (n_fired)
                for (int j = 0; j < n; j++) acc[j] = acc[j] + grow * s_e[j];
        } else {
            const float decay = cc[C_THETA_DECAY];
            for (int j = 0; j < n; j++) acc[j] = acc[j] * decay + theta_plus * s_e[j];
        }
        /* postsynaptic traces are 0 until their neuron's first spike; all of them decay in one
         * vector loop once every neuron is active */
        if (n_active_post == n) {
            for (int j = 0; j < n; j++) post1[j] = post1[j] * dec1, post2[j] = post2[j] * dec2;
        } else {
            for (int a = 0; a < n_active_post; a++) {
                const int j = active[a];
                post1[j] = post1[j] * dec1;
                post2[j] = post2[j] * dec2;
            }
        }
        if (delays) {
            /* post1 as this step's arrivals see it; the window moves to step t; the spikes of
             * step t - H + 1 are depressed */
            memcpy(p1hist + (size_t)r * n, post1, sizeof(float) * n);
            window_advance(mask, last_pre, idx, in_width, p_rows, t, h, dt);
            const int e = t - (h - 1);
            if (e >= 0 && e < shown)
                depress_delayed(w, delays, p1at, p1hist, slots + (size_t)e * width, width,
                                p_rows, n, e, h, nu_pre, w_max, done, &sp);
        } else {
            for (int k = 0; k < in_width; k++) {
                int src = idx[k];
                /* an input that spikes twice in a step is depressed once (its row is written,
                 * not accumulated, as by TensorFlow's scatter) */
                if (src < 0 || src >= p_rows || last_pre[src] == now) continue;
                float *row = w + (size_t)src * n;
                last_pre[src] = now;
                if (sparse_row(&sp, src)) { /* post1 = 0 but for the neurons listed */
                    for (int a = 0; a < n_active; a++) {
                        const int j = active[a];
                        const float x = row[j] - nu_pre * post1[j];
                        row[j] = x < 0.0f ? 0.0f : (x > w_max ? w_max : x);
                    }
                    continue;
                }
                over[src] = 0; /* clipped here */
                for (int j = 0; j < n; j++) {
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
            for (int j = 0; j < n; j++) counts[j] = counts[j] + s_e[j];
        if (delays) {
            for (int m = 0; m < n_new; m++)
                potentiate_delayed(w, delays, mask, last_pre, p_rows, n, fired[m], t, dt,
                                   post2[fired[m]], nu_post, tau_pre, w_max);
        } else {
            for (int i = 0; i < p_rows; i++)
                pre[i] = nu_post * exp_f((last_pre[i] - now) / tau_pre);
            for (int m = 0; m < n_new; m++) {
                const int j = fired[m];
                const float p2 = post2[j];
                float *col = w + j;
                for (int i = 0; i < p_rows; i++) {
                    float x = col[(size_t)i * n] + pre[i] * p2;
                    col[(size_t)i * n] = x < 0.0f ? 0.0f : (x > w_max ? w_max : x);
                }
            }
        }
        for (int m = 0; m < n_new; m++) post1[fired[m]] = post2[fired[m]] = 1.0f;
        n_active_post = n_active;
    }
    const float end = cc[C_THETA_END];
    for (int j = 0; j < n; j++)
        theta[j] = exact ? end * (theta0[j] + acc[j]) : (end == 1.0f ? acc[j] : acc[j] * end);
    if (state) {
        const float span = cc[C_SPAN];
        for (int k = 0; k < 10; k++) memcpy(state + (size_t)k * n, carried[k], sizeof(float) * n);
        for (int i = 0; i < p_rows; i++) state[(size_t)10 * n + i] = last_pre[i] - span;
    }
    free(buf), free(active), free(is_active), free(over), free(ring), free(mask), free(done);
    return 0;
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
        if (all_active) n_active = n_active_inh = activate_all(active, is_active, n);
        for (int j = 0; j < n; j++) count[j] = 0.0f;
        if (delays) memset(ring, 0, sizeof(float) * (size_t)h * n);
        for (int t = 0; t < steps; t++) {
            const int32_t *idx = slots + ((size_t)b * steps + t) * width;
            float *in = step_drive(drive, at, ring, w, delays, idx, width, n_inputs, n, t, h);
            const int n_fired = layer_step(exc_c, &exc, in, thr, dt, s_e, n);
            if (delays) memset(in, 0, sizeof(float) * n);
            int n_new = 0;
            if (n_fired) {
                for (int j = 0; j < n; j++) count[j] = count[j] + s_e[j];
                n_new = note_fired(s_e, n, fired, active, is_active, &n_active);
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
                 float *theta, int n, const float *exc_c, const float *inh_c, const float *cc,
                 float *state, const uint8_t *delays, int h, float *counts) {
    const FpMode mode = flush_denormals();
    const int rc = present(slots, shown, steps, width, n_inputs, w, theta, n, exc_c, inh_c, cc,
                           state, delays, h, counts);
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
