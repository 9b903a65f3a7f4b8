/*
 * control_kernel.c -- the C core of the sitebot control kernel (see control_kernel.h).
 *
 * Mirrored operation for operation by src/sitebot/control/kernel_py.py; keep them in step.
 */
#include "control_kernel.h"

#include <math.h>
#include <string.h>

#define CK_TWO_PI 6.28318530717958647692
#define CMD_NONE 0
#define CMD_VALID 1
#define CMD_INVALID 2

static double clampd(double x, double lo, double hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

static int all_finite(const double *x, int n)
{
    int i;
    for (i = 0; i < n; ++i)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

int ck_config_check(const ck_config *c, const char **field)
{
    int i, n = c->n_joints;
    const char *bad = NULL;
    if (n < 1 || n > CK_MAX_JOINTS)
        bad = "n_joints";
    for (i = 0; !bad && i < n; ++i) {
        if (isnan(c->pos_min[i]) || isnan(c->pos_max[i]) || !(c->pos_min[i] < c->pos_max[i]))
            bad = "pos_min";
        else if (!(isfinite(c->vel_max[i]) && c->vel_max[i] > 0))
            bad = "vel_max";
        else if (!(isfinite(c->acc_max[i]) && c->acc_max[i] > 0))
            bad = "acc_max";
        else if (!(isfinite(c->effort_max[i]) && c->effort_max[i] > 0))
            bad = "effort_max";
        else if (!(isfinite(c->kp[i]) && c->kp[i] >= 0))
            bad = "kp";
        else if (!(isfinite(c->kd[i]) && c->kd[i] >= 0))
            bad = "kd";
    }
#define POSITIVE(f) else if (!(isfinite(c->f) && c->f > 0)) bad = #f;
    if (bad) {
    } else if (c->interface < CK_IF_POSITION || c->interface > CK_IF_EFFORT)
        bad = "interface";
    POSITIVE(wheel_radius_m)
    POSITIVE(wheel_separation_m)
    POSITIVE(wheel_vel_max)
    POSITIVE(base_lin_acc_max)
    POSITIVE(base_ang_acc_max)
    POSITIVE(base_lin_vel_max)
    POSITIVE(base_ang_vel_max)
    POSITIVE(cmd_timeout_s)
    POSITIVE(heartbeat_timeout_s)
    else if (c->max_points < 1 || c->max_points > CK_MAX_POINTS_LIMIT)
        bad = "max_points";
    else if (!(isfinite(c->limit_margin) && c->limit_margin >= 0))
        bad = "limit_margin";
#undef POSITIVE
    if (field)
        *field = bad;
    return bad ? -1 : 0;
}

size_t ck_memory_doubles(const ck_config *c)
{
    size_t n = (size_t)c->n_joints, mp = (size_t)c->max_points;
    /* active: (mp + 1) knots x (t + p, v, a); pending: mp points x (t + p, v, a) */
    return (mp + 1) * (1 + 3 * n) + mp * (1 + 3 * n);
}

static void clear_state(ck_kernel *k)
{
    int n = k->n;
    k->sp_init = 0;
    memset(k->q_sp, 0, sizeof k->q_sp);
    memset(k->v_sp, 0, sizeof k->v_sp);
    memset(k->qdt, 0, sizeof k->qdt);
    memset(k->qt, 0, sizeof k->qt);
    memset(k->qddt, 0, sizeof k->qddt);
    (void)n;
    k->has_act = 0;
    k->act.count = 0;
    k->act.quintic = 0;
    k->has_pend = 0;
    k->pend.count = 0;
    k->tau = 0.0;
    k->s = 0.0;
    k->seg = 0;
    k->cmd_state = CMD_NONE;
    k->cmd_v = 0.0;
    k->cmd_w = 0.0;
    k->cmd_stamp = -INFINITY;
    k->base_v = 0.0;
    k->base_w = 0.0;
    k->odo_init = 0;
    k->x = 0.0;
    k->y = 0.0;
    k->yaw = 0.0;
    k->wq_prev[0] = 0.0;
    k->wq_prev[1] = 0.0;
}

/* What a pinned source said (sequence, releases, its latest heartbeat): nothing yet. */
static void forget_source(ck_kernel *k)
{
    k->seq_rx = 0;
    k->seq = 0;
    k->rel_seen = 0;
    k->rel_floor = 0;
    k->hb_rx = 0;
    k->hb_stamp = -INFINITY;
    k->scale = 0.0;
    k->cat = CK_CAT_NONE;
}

int ck_init(ck_kernel *k, const ck_config *cfg, double *mem, size_t mem_doubles)
{
    size_t n, mp;
    if (!k || !cfg || ck_config_check(cfg, NULL) != 0 || !mem ||
        mem_doubles < ck_memory_doubles(cfg))
        return -1;
    memset(k, 0, sizeof *k);
    k->cfg = *cfg;
    k->n = cfg->n_joints;
    k->half_sep = 0.5 * cfg->wheel_separation_m;
    n = (size_t)k->n;
    mp = (size_t)cfg->max_points;
    k->act.t = mem;
    k->act.p = k->act.t + (mp + 1);
    k->act.v = k->act.p + (mp + 1) * n;
    k->act.a = k->act.v + (mp + 1) * n;
    k->pend.times = k->act.a + (mp + 1) * n;
    k->pend.pos = k->pend.times + mp;
    k->pend.vel = k->pend.pos + mp * n;
    k->pend.acc = k->pend.vel + mp * n;
    k->pinned = 0;
    k->src = 0;
    forget_source(k);
    k->foreign_rx = 0;
    k->foreign_t = -INFINITY;
    k->latch = CK_LATCH_START;
    k->cat0_latched = 0;
    k->last_t = -INFINITY;
    clear_state(k);
    return 0;
}

/* ---- setpoint calls ------------------------------------------------------------------ */

int ck_set_trajectory(ck_kernel *k, int count, const double *times, const double *pos,
                      const double *vel, const double *acc, int has_start, double start)
{
    const int n = k->n;
    const double *lo = k->cfg.pos_min, *hi = k->cfg.pos_max;
    const double *vmax = k->cfg.vel_max, *amax = k->cfg.acc_max;
    int i, j;
    size_t sz;
    if (count <= 0)
        return CK_EMPTY;
    if (count > k->cfg.max_points)
        return CK_TOO_MANY_POINTS;
    if (!times || !pos)
        return CK_WRONG_SIZE;
    if (has_start && !isfinite(start))
        return CK_NON_FINITE;
    if (!all_finite(times, count) || !all_finite(pos, count * n) ||
        (vel && !all_finite(vel, count * n)) || (acc && !all_finite(acc, count * n)))
        return CK_NON_FINITE;
    if (times[0] < 0.0)
        return CK_NON_MONOTONIC_TIME;
    for (j = 1; j < count; ++j)
        if (!(times[j] > times[j - 1]))
            return CK_NON_MONOTONIC_TIME;
    for (j = 0; j < count; ++j) {
        const double *row = pos + (size_t)j * n;
        for (i = 0; i < n; ++i)
            if (row[i] < lo[i] || row[i] > hi[i])
                return CK_OUT_OF_LIMITS;
        if (vel)
            for (i = 0; i < n; ++i)
                if (fabs(vel[(size_t)j * n + i]) > vmax[i])
                    return CK_OUT_OF_LIMITS;
        if (acc)
            for (i = 0; i < n; ++i)
                if (fabs(acc[(size_t)j * n + i]) > amax[i])
                    return CK_OUT_OF_LIMITS;
        if (j > 0) {
            double dt = times[j] - times[j - 1];
            const double *prev = row - n;
            for (i = 0; i < n; ++i)
                if (fabs(row[i] - prev[i]) > vmax[i] * dt * (1.0 + CK_SPEED_SLACK))
                    return CK_OUT_OF_LIMITS;
        }
    }
    sz = (size_t)count * (size_t)n * sizeof(double);
    memcpy(k->pend.times, times, (size_t)count * sizeof(double));
    memcpy(k->pend.pos, pos, sz);
    k->pend.has_vel = vel != NULL;
    k->pend.has_acc = acc != NULL;
    if (vel)
        memcpy(k->pend.vel, vel, sz);
    if (acc)
        memcpy(k->pend.acc, acc, sz);
    k->pend.count = count;
    k->pend.start = has_start ? start : -INFINITY;
    k->has_pend = 1;
    return CK_ACCEPTED;
}

int ck_set_base_command(ck_kernel *k, double v, double w, double stamp)
{
    if (!(isfinite(v) && isfinite(w) && isfinite(stamp))) {
        k->cmd_state = CMD_INVALID;
        k->cmd_v = 0.0;
        k->cmd_w = 0.0;
        return CK_NON_FINITE;
    }
    k->cmd_v = v;
    k->cmd_w = w;
    k->cmd_stamp = stamp;
    k->cmd_state = CMD_VALID;
    return CK_ACCEPTED;
}

/* Close the latch for `cause`; a release must then bring a count above today's. */
static void latch_close(ck_kernel *k, unsigned cause)
{
    k->latch |= cause;
    k->rel_floor = k->rel_seen;
}

/* The pinned heartbeat is fresh at the kernel's latest time (before the first step: yes). */
static int heartbeat_fresh(const ck_kernel *k)
{
    return k->hb_rx && !(k->last_t - k->hb_stamp > k->cfg.heartbeat_timeout_s);
}

int ck_pin_supervisor(ck_kernel *k, uint64_t source)
{
    if (k->pinned && k->src == source)
        return 1;
    if (k->pinned && heartbeat_fresh(k))
        return 0;
    if (k->pinned)
        k->latch |= CK_LATCH_HEARTBEAT;
    k->pinned = 1;
    k->src = source;
    forget_source(k);
    return 1;
}

int ck_set_supervisor(ck_kernel *k, uint64_t source, uint64_t sequence, uint64_t releases,
                      double stamp, double scale, int cat)
{
    if (cat != CK_CAT0 && cat != CK_CAT1 && cat != CK_CAT2 && cat != CK_CAT_NONE)
        return -1;
    if (!k->pinned || source != k->src) {
        k->foreign_rx = 1;
        k->foreign_t = k->last_t;
        latch_close(k, CK_LATCH_FOREIGN);
        return CK_HB_FOREIGN;
    }
    if ((k->seq_rx && sequence <= k->seq) || releases < k->rel_seen) {
        latch_close(k, CK_LATCH_SEQUENCE);
        return CK_HB_SEQUENCE;
    }
    k->seq_rx = 1;
    k->seq = sequence;
    k->rel_seen = releases;
    if (cat != CK_CAT_NONE) {
        latch_close(k, CK_LATCH_STOP);
        if (cat == CK_CAT0)
            k->cat0_latched = 1;
    }
    if (!isfinite(stamp))
        return CK_HB_ACCEPTED; /* not a heartbeat */
    if (!isfinite(scale))
        scale = 0.0;
    k->hb_rx = 1;
    k->hb_stamp = stamp;
    k->scale = clampd(scale, 0.0, 1.0);
    k->cat = cat;
    /* a release: category NONE, fresh, no foreign source lately, a new release count */
    if (k->latch && cat == CK_CAT_NONE && releases > k->rel_floor && heartbeat_fresh(k) &&
        !(k->foreign_rx && !(k->last_t - k->foreign_t > k->cfg.heartbeat_timeout_s))) {
        k->latch = 0;
        k->cat0_latched = 0;
        return CK_HB_RELEASED;
    }
    return CK_HB_ACCEPTED;
}

int ck_reset(ck_kernel *k, const double *positions)
{
    int i;
    if (!all_finite(positions, k->n))
        return -1;
    clear_state(k);
    for (i = 0; i < k->n; ++i)
        k->q_sp[i] = clampd(positions[i], k->cfg.pos_min[i], k->cfg.pos_max[i]);
    k->sp_init = 1;
    return 0;
}

/* ---- trajectory internals ------------------------------------------------------------ */

static void eval_segment(const ck_traj *tr, int n, int k, double tau, double *q, double *qd,
                         double *qdd)
{
    const double t0 = tr->t[k];
    const double h = tr->t[k + 1] - t0;
    const double u = (tau - t0) / h;
    const double *p0 = tr->p + (size_t)k * n, *p1 = p0 + n;
    const double *v0 = tr->v + (size_t)k * n, *v1 = v0 + n;
    const double u2 = u * u;
    const double u3 = u2 * u;
    int i;
    if (tr->quintic) {
        const double *a0 = tr->a + (size_t)k * n, *a1 = a0 + n;
        const double u4 = u3 * u;
        const double u5 = u4 * u;
        const double H0 = 1.0 - 10.0 * u3 + 15.0 * u4 - 6.0 * u5;
        const double H1 = u - 6.0 * u3 + 8.0 * u4 - 3.0 * u5;
        const double H2 = 0.5 * u2 - 1.5 * u3 + 1.5 * u4 - 0.5 * u5;
        const double H3 = 0.5 * u3 - u4 + 0.5 * u5;
        const double H4 = -4.0 * u3 + 7.0 * u4 - 3.0 * u5;
        const double H5 = 10.0 * u3 - 15.0 * u4 + 6.0 * u5;
        const double dH0 = -30.0 * u2 + 60.0 * u3 - 30.0 * u4;
        const double dH1 = 1.0 - 18.0 * u2 + 32.0 * u3 - 15.0 * u4;
        const double dH2 = u - 4.5 * u2 + 6.0 * u3 - 2.5 * u4;
        const double dH3 = 1.5 * u2 - 4.0 * u3 + 2.5 * u4;
        const double dH4 = -12.0 * u2 + 28.0 * u3 - 15.0 * u4;
        const double dH5 = 30.0 * u2 - 60.0 * u3 + 30.0 * u4;
        const double ddH0 = -60.0 * u + 180.0 * u2 - 120.0 * u3;
        const double ddH1 = -36.0 * u + 96.0 * u2 - 60.0 * u3;
        const double ddH2 = 1.0 - 9.0 * u + 18.0 * u2 - 10.0 * u3;
        const double ddH3 = 3.0 * u - 12.0 * u2 + 10.0 * u3;
        const double ddH4 = -24.0 * u + 84.0 * u2 - 60.0 * u3;
        const double ddH5 = 60.0 * u - 180.0 * u2 + 120.0 * u3;
        const double hh = h * h;
        for (i = 0; i < n; ++i) {
            q[i] = H0 * p0[i] + H1 * h * v0[i] + H2 * hh * a0[i] + H3 * hh * a1[i] +
                   H4 * h * v1[i] + H5 * p1[i];
            qd[i] = (dH0 * p0[i] + dH5 * p1[i]) / h + dH1 * v0[i] + dH4 * v1[i] +
                    h * (dH2 * a0[i] + dH3 * a1[i]);
            qdd[i] = (ddH0 * p0[i] + ddH5 * p1[i]) / hh + (ddH1 * v0[i] + ddH4 * v1[i]) / h +
                     ddH2 * a0[i] + ddH3 * a1[i];
        }
    } else {
        const double h00 = 2.0 * u3 - 3.0 * u2 + 1.0;
        const double h10 = u3 - 2.0 * u2 + u;
        const double h01 = -2.0 * u3 + 3.0 * u2;
        const double h11 = u3 - u2;
        const double dh00 = 6.0 * u2 - 6.0 * u;
        const double dh10 = 3.0 * u2 - 4.0 * u + 1.0;
        const double dh01 = -6.0 * u2 + 6.0 * u;
        const double dh11 = 3.0 * u2 - 2.0 * u;
        const double ddh00 = 12.0 * u - 6.0;
        const double ddh10 = 6.0 * u - 4.0;
        const double ddh01 = -12.0 * u + 6.0;
        const double ddh11 = 6.0 * u - 2.0;
        const double hh = h * h;
        for (i = 0; i < n; ++i) {
            q[i] = h00 * p0[i] + h10 * h * v0[i] + h01 * p1[i] + h11 * h * v1[i];
            qd[i] = (dh00 * p0[i] + dh01 * p1[i]) / h + dh10 * v0[i] + dh11 * v1[i];
            qdd[i] = (ddh00 * p0[i] + ddh01 * p1[i]) / hh + (ddh10 * v0[i] + ddh11 * v1[i]) / h;
        }
    }
}

/* Sample tr at tau; seg >= 0 is a cursor that only moves forward, -1 searches. */
static int sample_traj(const ck_traj *tr, int n, double tau, int seg, double *q, double *qd,
                       double *qdd)
{
    const double *t = tr->t;
    const int last = tr->count - 1;
    int i;
    if (last == 0 || tau >= t[last]) {
        memcpy(q, tr->p + (size_t)last * n, (size_t)n * sizeof(double));
        for (i = 0; i < n; ++i) {
            qd[i] = 0.0;
            qdd[i] = 0.0;
        }
        return last - 1 > 0 ? last - 1 : 0;
    }
    if (tau <= t[0])
        tau = t[0];
    if (seg < 0) {
        int lo_k = 0, hi_k = last - 1;
        while (lo_k < hi_k) {
            int mid = (lo_k + hi_k + 1) >> 1;
            if (t[mid] <= tau)
                lo_k = mid;
            else
                hi_k = mid - 1;
        }
        seg = lo_k;
        if (seg > 0 && t[seg] == tau)
            seg -= 1;
    } else {
        while (seg < last - 1 && tau > t[seg + 1])
            ++seg;
    }
    eval_segment(tr, n, seg, tau, q, qd, qdd);
    return seg;
}

int ck_sample(const ck_kernel *k, double tau, double *q, double *qd, double *qdd)
{
    if (!k->has_act)
        return 0;
    sample_traj(&k->act, k->n, tau, -1, q, qd, qdd);
    return 1;
}

static void activate(ck_kernel *k)
{
    const int n = k->n;
    const ck_pending *pd = &k->pend;
    ck_traj *tr = &k->act;
    const double s = k->s;
    const int first_user = pd->times[0] > 0.0;
    const int count = pd->count + first_user;
    const size_t rows = (size_t)pd->count * (size_t)n;
    double *t = tr->t, *p = tr->p, *v = tr->v, *a = tr->a;
    int i, j;
    k->has_pend = 0;
    if (first_user) {
        t[0] = 0.0;
        for (i = 0; i < n; ++i) {
            p[i] = k->q_sp[i];
            v[i] = s > 0.0 ? clampd(k->v_sp[i] / s, -k->cfg.vel_max[i], k->cfg.vel_max[i]) : 0.0;
            a[i] = 0.0;
        }
    }
    memcpy(t + first_user, pd->times, (size_t)pd->count * sizeof(double));
    memcpy(p + (size_t)first_user * n, pd->pos, rows * sizeof(double));
    if (pd->has_vel) {
        memcpy(v + (size_t)first_user * n, pd->vel, rows * sizeof(double));
    } else {
        for (i = first_user * n; i < count * n; ++i)
            v[i] = 0.0;
        for (j = 1; j < count - 1; ++j) {
            const double dt0 = t[j] - t[j - 1];
            const double dt1 = t[j + 1] - t[j];
            for (i = 0; i < n; ++i) {
                const double d0 = (p[(size_t)j * n + i] - p[(size_t)(j - 1) * n + i]) / dt0;
                const double d1 = (p[(size_t)(j + 1) * n + i] - p[(size_t)j * n + i]) / dt1;
                if (d0 * d1 > 0.0) {
                    double m = 0.5 * (d0 + d1);
                    double lim = 3.0 * (fabs(d0) <= fabs(d1) ? fabs(d0) : fabs(d1));
                    if (lim > k->cfg.vel_max[i])
                        lim = k->cfg.vel_max[i];
                    if (fabs(m) > lim)
                        m = copysign(lim, m);
                    v[(size_t)j * n + i] = m;
                }
            }
        }
    }
    tr->quintic = pd->has_acc;
    if (pd->has_acc) {
        memcpy(a + (size_t)first_user * n, pd->acc, rows * sizeof(double));
    } else {
        for (i = first_user * n; i < count * n; ++i)
            a[i] = 0.0;
    }
    tr->count = count;
    k->has_act = 1;
    k->tau = 0.0;
    k->seg = 0;
}

static void write_tail(const ck_kernel *k, double *out, int status)
{
    const int n = k->n;
    double active = 0.0;
    out[CK_OUT_ODOMETRY(n) + 0] = k->x;
    out[CK_OUT_ODOMETRY(n) + 1] = k->y;
    out[CK_OUT_ODOMETRY(n) + 2] = k->yaw;
    out[CK_OUT_TRAJECTORY_TIME(n)] = k->has_act ? k->tau : 0.0;
    if (k->has_pend || (k->has_act && k->tau < k->act.t[k->act.count - 1]))
        active = 1.0;
    out[CK_OUT_TRAJECTORY_ACTIVE(n)] = active;
    out[CK_OUT_STATUS(n)] = (double)status;
    out[CK_OUT_LATCH(n)] = (double)k->latch;
}

static int step_invalid(ck_kernel *k, const double *q, double *out)
{
    const int n = k->n;
    int i;
    k->s = 0.0;
    for (i = 0; i < n; ++i) {
        double p;
        k->v_sp[i] = 0.0;
        if (k->sp_init)
            p = k->q_sp[i];
        else
            p = clampd(isfinite(q[i]) ? q[i] : 0.0, k->cfg.pos_min[i], k->cfg.pos_max[i]);
        out[CK_OUT_POSITION(n) + i] = p;
        out[CK_OUT_VELOCITY(n) + i] = 0.0;
        out[CK_OUT_EFFORT(n) + i] = 0.0;
        out[CK_OUT_POSITION_ERROR(n) + i] = isfinite(q[i]) ? p - q[i] : 0.0;
        out[CK_OUT_SETPOINT_VELOCITY(n) + i] = 0.0;
    }
    k->base_v = 0.0;
    k->base_w = 0.0;
    out[CK_OUT_WHEEL_VELOCITY(n) + 0] = 0.0;
    out[CK_OUT_WHEEL_VELOCITY(n) + 1] = 0.0;
    out[CK_OUT_BASE_VELOCITY(n) + 0] = 0.0;
    out[CK_OUT_BASE_VELOCITY(n) + 1] = 0.0;
    out[CK_OUT_ODOMETRY(n) + 3] = 0.0;
    out[CK_OUT_ODOMETRY(n) + 4] = 0.0;
    write_tail(k, out, CK_INVALID_INPUT);
    return CK_INVALID_INPUT;
}

/* ---- the tick -------------------------------------------------------------------------- */

int ck_step(ck_kernel *k, double t, double dt, const double *q, const double *qd,
            const double *wq, const double *wqd, double *out)
{
    const int n = k->n;
    const ck_config *cfg = &k->cfg;
    const double *lo = cfg->pos_min, *hi = cfg->pos_max;
    const double *vmax = cfg->vel_max, *amax = cfg->acc_max;
    const double margin = cfg->limit_margin;
    double *q_sp = k->q_sp, *v_sp = k->v_sp, *qdt = k->qdt;
    int hb_ok, stopping, cat0, viol, cmd_timeout, status, i;
    double scale, s, tv, tw, f, bv, bw, r, wl, wr, m, odo_v, odo_w;

    if (!(isfinite(t) && isfinite(dt) && dt > 0.0 && all_finite(q, n) && all_finite(qd, n) &&
          all_finite(wq, 2) && all_finite(wqd, 2)))
        return step_invalid(k, q, out);
    if (!k->sp_init) {
        for (i = 0; i < n; ++i) {
            q_sp[i] = clampd(q[i], lo[i], hi[i]);
            v_sp[i] = 0.0;
        }
        k->sp_init = 1;
    }
    k->last_t = t;

    /* supervisor */
    hb_ok = k->hb_rx && (t - k->hb_stamp) <= cfg->heartbeat_timeout_s;
    if (k->hb_rx && !hb_ok && !(k->latch & CK_LATCH_HEARTBEAT))
        latch_close(k, CK_LATCH_HEARTBEAT);
    stopping = k->latch != 0 || !hb_ok;
    cat0 = k->cat0_latched;
    scale = stopping ? 0.0 : k->scale;

    /* measured positions against the limits */
    viol = 0;
    for (i = 0; i < n; ++i)
        if (q[i] < lo[i] - margin || q[i] > hi[i] + margin)
            viol = 1;

    /* trajectory start */
    if (k->has_pend && t >= k->pend.start)
        activate(k);

    /* trajectory time rate */
    if (cat0 || viol) {
        k->s = 0.0;
    } else {
        const double target = stopping ? 0.0 : scale;
        double rate = INFINITY;
        s = k->s;
        for (i = 0; i < n; ++i) {
            const double aq = fabs(qdt[i]);
            if (aq > 0.0) {
                const double rr = amax[i] / aq;
                if (rr < rate)
                    rate = rr;
            }
        }
        if (rate == INFINITY) {
            s = target;
        } else {
            const double ds = rate * dt;
            if (s > target) {
                s = s - ds;
                if (s < target)
                    s = target;
            } else if (s < target) {
                s = s + ds;
                if (s > target)
                    s = target;
            }
        }
        k->s = s;
    }
    s = k->s;

    /* trajectory sample */
    if (k->has_act) {
        const double end = k->act.t[k->act.count - 1];
        if (k->tau < end) {
            k->tau = k->tau + s * dt;
            if (k->tau > end)
                k->tau = end;
        }
        k->seg = sample_traj(&k->act, n, k->tau, k->seg, k->qt, qdt, k->qddt);
    } else {
        for (i = 0; i < n; ++i) {
            k->qt[i] = q_sp[i];
            qdt[i] = 0.0;
        }
    }

    /* setpoint: clamp, rate-limit, never faster during a stop */
    for (i = 0; i < n; ++i) {
        const double qdi = clampd(k->qt[i], lo[i], hi[i]);
        const double vd = clampd(qdt[i] * s, -vmax[i], vmax[i]);
        const double lim = amax[i] * dt;
        const double dv = clampd(vd - v_sp[i], -lim, lim);
        double vn = v_sp[i] + dv;
        if (stopping && fabs(vn) > fabs(v_sp[i]))
            vn = v_sp[i];
        if (cat0 || viol)
            vn = 0.0;
        q_sp[i] = qdi;
        v_sp[i] = vn;
    }

    /* arm commands */
    for (i = 0; i < n; ++i) {
        const double e = q_sp[i] - q[i];
        double vc = clampd(v_sp[i] + cfg->kp[i] * e, -vmax[i], vmax[i]);
        double ec = clampd(cfg->kp[i] * e + cfg->kd[i] * (v_sp[i] - qd[i]), -cfg->effort_max[i],
                           cfg->effort_max[i]);
        if (cat0) {
            vc = 0.0;
            ec = 0.0;
        }
        if (q[i] > hi[i] + margin) {
            if (vc > 0.0)
                vc = 0.0;
            if (ec > 0.0)
                ec = 0.0;
        } else if (q[i] < lo[i] - margin) {
            if (vc < 0.0)
                vc = 0.0;
            if (ec < 0.0)
                ec = 0.0;
        }
        out[CK_OUT_POSITION(n) + i] = q_sp[i];
        out[CK_OUT_VELOCITY(n) + i] = vc;
        out[CK_OUT_EFFORT(n) + i] = ec;
        out[CK_OUT_POSITION_ERROR(n) + i] = e;
        out[CK_OUT_SETPOINT_VELOCITY(n) + i] = v_sp[i];
    }

    /* base */
    cmd_timeout = 0;
    if (k->cmd_state == CMD_VALID && (t - k->cmd_stamp) <= cfg->cmd_timeout_s) {
        tv = k->cmd_v;
        tw = k->cmd_w;
    } else {
        tv = 0.0;
        tw = 0.0;
        cmd_timeout = k->cmd_state != CMD_NONE;
    }
    /* the speed scale caps the base speed (scale x the limits, curvature kept); it does not
       multiply the command, which the supervisor has already limited */
    {
        const double lim_v = cfg->base_lin_vel_max * scale;
        const double lim_w = cfg->base_ang_vel_max * scale;
        f = 1.0;
        if (fabs(tv) > lim_v)
            f = lim_v / fabs(tv);
        if (fabs(tw) > lim_w) {
            const double g = lim_w / fabs(tw);
            if (g < f)
                f = g;
        }
    }
    tv = tv * f;
    tw = tw * f;
    if (cat0) {
        bv = 0.0;
        bw = 0.0;
    } else {
        const double dvb = tv - k->base_v;
        const double dwb = tw - k->base_w;
        const double lv = cfg->base_lin_acc_max * dt;
        const double lw = cfg->base_ang_acc_max * dt;
        f = 1.0;
        if (fabs(dvb) > lv)
            f = lv / fabs(dvb);
        if (fabs(dwb) > lw) {
            const double g = lw / fabs(dwb);
            if (g < f)
                f = g;
        }
        bv = k->base_v + f * dvb;
        bw = k->base_w + f * dwb;
    }
    r = cfg->wheel_radius_m;
    wl = (bv - bw * k->half_sep) / r;
    wr = (bv + bw * k->half_sep) / r;
    m = fabs(wl) > fabs(wr) ? fabs(wl) : fabs(wr);
    if (m > cfg->wheel_vel_max) {
        f = cfg->wheel_vel_max / m;
        wl = wl * f;
        wr = wr * f;
        bv = bv * f;
        bw = bw * f;
    }
    k->base_v = bv;
    k->base_w = bw;

    /* odometry (midpoint heading) */
    if (k->odo_init) {
        const double dl = (wq[0] - k->wq_prev[0]) * r;
        const double dr = (wq[1] - k->wq_prev[1]) * r;
        const double dsd = 0.5 * (dl + dr);
        const double dth = (dr - dl) / cfg->wheel_separation_m;
        const double head = k->yaw + 0.5 * dth;
        k->x = k->x + dsd * cos(head);
        k->y = k->y + dsd * sin(head);
        k->yaw = remainder(k->yaw + dth, CK_TWO_PI);
    }
    k->odo_init = 1;
    k->wq_prev[0] = wq[0];
    k->wq_prev[1] = wq[1];
    odo_v = r * 0.5 * (wqd[0] + wqd[1]);
    odo_w = r * (wqd[1] - wqd[0]) / cfg->wheel_separation_m;

    /* status */
    status = CK_OK;
    if (stopping) {
        int still = s == 0.0 && bv == 0.0 && bw == 0.0;
        for (i = 0; still && i < n; ++i)
            if (v_sp[i] != 0.0)
                still = 0;
        status = still ? CK_STOPPED : CK_STOPPING;
    }
    if (cmd_timeout)
        status = CK_COMMAND_TIMEOUT;
    if (!hb_ok)
        status = CK_HEARTBEAT_TIMEOUT;
    if (viol)
        status = CK_LIMIT_VIOLATION;

    out[CK_OUT_WHEEL_VELOCITY(n) + 0] = wl;
    out[CK_OUT_WHEEL_VELOCITY(n) + 1] = wr;
    out[CK_OUT_BASE_VELOCITY(n) + 0] = bv;
    out[CK_OUT_BASE_VELOCITY(n) + 1] = bw;
    out[CK_OUT_ODOMETRY(n) + 3] = odo_v;
    out[CK_OUT_ODOMETRY(n) + 4] = odo_w;
    write_tail(k, out, status);
    return status;
}
