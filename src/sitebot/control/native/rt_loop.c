/*
 * rt_loop.c -- fixed-rate pthread stepping the control kernel (see rt_loop.h).
 */
#define _GNU_SOURCE
#include "rt_loop.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#define NS_PER_S 1000000000LL

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

double rt_now_s(void)
{
    return (double)now_ns() * 1e-9;
}

static int init_mutex(pthread_mutex_t *m)
{
    pthread_mutexattr_t attr;
    int rc;
    if (pthread_mutexattr_init(&attr) != 0)
        return -1;
    /* a Python thread holding a lock must not be starved by the real-time thread */
    pthread_mutexattr_setprotocol(&attr, PTHREAD_PRIO_INHERIT);
    rc = pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}

int rt_init(rt_loop *L, ck_kernel *kernel, pthread_mutex_t *kernel_lock, double rate_hz)
{
    int i;
    if (!(isfinite(rate_hz) && rate_hz > 0.0 && rate_hz <= 100000.0))
        return -1;
    memset(L, 0, sizeof *L);
    L->kernel = kernel;
    L->kernel_lock = kernel_lock;
    L->period_ns = (long long)llround(1e9 / rate_hz);
    L->period_s = (double)L->period_ns * 1e-9;
    for (i = 0; i < RT_STATE_SIZE; ++i)
        L->state[i] = NAN;            /* no state yet: the kernel holds (INVALID_INPUT) */
    if (init_mutex(&L->state_lock) != 0)
        return -1;
    if (init_mutex(&L->out_lock) != 0) {
        pthread_mutex_destroy(&L->state_lock);
        return -1;
    }
    return 0;
}

static void record_period(rt_loop *L, long long period_ns)
{
    const double period = (double)period_ns * 1e-9;
    const double err = fabs(period - L->period_s);
    const double delta = period - L->mean_period;
    long long bin;
    L->n_periods += 1;
    L->mean_period += delta / (double)L->n_periods;
    L->m2_period += delta * (period - L->mean_period);
    if (err > L->max_error)
        L->max_error = err;
    bin = (long long)(err * 1e6);
    if (bin < RT_HIST_BINS)
        __atomic_store_n(&L->hist[bin], L->hist[bin] + 1, __ATOMIC_RELAXED);
    else
        __atomic_store_n(&L->hist_over, L->hist_over + 1, __ATOMIC_RELAXED);
}

static void *rt_main(void *arg)
{
    rt_loop *L = (rt_loop *)arg;
    double state[RT_STATE_SIZE];
    long long next = now_ns(), prev = -1;
    const long long period = L->period_ns;
    struct timespec ts;

    while (!__atomic_load_n(&L->stop_flag, __ATOMIC_ACQUIRE)) {
        long long wake, end;
        int n;
        next += period;
        ts.tv_sec = (time_t)(next / NS_PER_S);
        ts.tv_nsec = (long)(next % NS_PER_S);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
        wake = now_ns();
        if (__atomic_load_n(&L->stop_flag, __ATOMIC_ACQUIRE))
            break;

        pthread_mutex_lock(&L->state_lock);
        memcpy(state, L->state, sizeof state);
        pthread_mutex_unlock(&L->state_lock);

        pthread_mutex_lock(L->kernel_lock);
        n = L->kernel->n;
        ck_step(L->kernel, (double)wake * 1e-9, L->period_s, state, state + n, state + 2 * n,
                state + 2 * n + 2, L->scratch);
        pthread_mutex_unlock(L->kernel_lock);

        pthread_mutex_lock(&L->out_lock);
        memcpy(L->out, L->scratch, ck_output_size(n) * sizeof(double));
        L->ticks += 1;
        if (prev >= 0)
            record_period(L, wake - prev);
        end = now_ns();
        if (end >= next + period) {   /* overrun: skip the deadlines already missed */
            const long long missed = (end - next) / period;
            L->overruns += missed;
            next += missed * period;
        }
        pthread_mutex_unlock(&L->out_lock);
        prev = wake;
    }
    return NULL;
}

int rt_start(rt_loop *L)
{
    pthread_attr_t attr;
    struct sched_param sp;
    int rc;
    if (L->running)
        return EBUSY;
    __atomic_store_n(&L->stop_flag, 0, __ATOMIC_RELEASE);
    /* try SCHED_FIFO first (needs CAP_SYS_NICE / an rtprio limit), else the default policy */
    L->realtime = 0;
    rc = pthread_attr_init(&attr);
    if (rc == 0) {
        memset(&sp, 0, sizeof sp);
        sp.sched_priority = 80;
        if (sp.sched_priority > sched_get_priority_max(SCHED_FIFO))
            sp.sched_priority = sched_get_priority_max(SCHED_FIFO);
        pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
        pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
        pthread_attr_setschedparam(&attr, &sp);
        rc = pthread_create(&L->thread, &attr, rt_main, L);
        pthread_attr_destroy(&attr);
        if (rc == 0)
            L->realtime = 1;
    }
    if (rc != 0)
        rc = pthread_create(&L->thread, NULL, rt_main, L);
    if (rc != 0)
        return rc;
    L->running = 1;
    return 0;
}

int rt_stop(rt_loop *L)
{
    if (!L->running)
        return 0;
    __atomic_store_n(&L->stop_flag, 1, __ATOMIC_RELEASE);
    pthread_join(L->thread, NULL);
    L->running = 0;
    return 0;
}

void rt_destroy(rt_loop *L)
{
    rt_stop(L);
    pthread_mutex_destroy(&L->state_lock);
    pthread_mutex_destroy(&L->out_lock);
}

void rt_write_state(rt_loop *L, const double *q, const double *qd, const double *wq,
                    const double *wqd)
{
    const size_t n = (size_t)L->kernel->n;
    pthread_mutex_lock(&L->state_lock);
    memcpy(L->state, q, n * sizeof(double));
    memcpy(L->state + n, qd, n * sizeof(double));
    memcpy(L->state + 2 * n, wq, 2 * sizeof(double));
    memcpy(L->state + 2 * n + 2, wqd, 2 * sizeof(double));
    pthread_mutex_unlock(&L->state_lock);
}

long long rt_read_output(rt_loop *L, double *out)
{
    long long ticks;
    pthread_mutex_lock(&L->out_lock);
    memcpy(out, L->out, ck_output_size(L->kernel->n) * sizeof(double));
    ticks = L->ticks;
    pthread_mutex_unlock(&L->out_lock);
    return ticks;
}

void rt_get_stats(rt_loop *L, rt_stats *st)
{
    long long n_periods, total = 0, cum = 0, target;
    int b;
    pthread_mutex_lock(&L->out_lock);
    n_periods = L->n_periods;
    st->mean_period_s = n_periods > 0 ? L->mean_period : 0.0;
    st->std_period_s = n_periods > 1 ? sqrt(L->m2_period / (double)(n_periods - 1)) : 0.0;
    st->max_error_s = L->max_error;
    st->overruns = L->overruns;
    st->ticks = L->ticks;
    pthread_mutex_unlock(&L->out_lock);
    /* the histogram is read without the lock (relaxed; the thread is its only writer) */
    for (b = 0; b < RT_HIST_BINS; ++b)
        total += __atomic_load_n(&L->hist[b], __ATOMIC_RELAXED);
    total += __atomic_load_n(&L->hist_over, __ATOMIC_RELAXED);
    st->p99_error_s = 0.0;
    if (total > 0) {
        target = (long long)ceil(0.99 * (double)total);
        st->p99_error_s = st->max_error_s;
        for (b = 0; b < RT_HIST_BINS; ++b) {
            cum += __atomic_load_n(&L->hist[b], __ATOMIC_RELAXED);
            if (cum >= target) {
                st->p99_error_s = (double)(b + 1) * 1e-6;   /* upper edge of the bin */
                if (st->p99_error_s > st->max_error_s)
                    st->p99_error_s = st->max_error_s;
                break;
            }
        }
    }
}
