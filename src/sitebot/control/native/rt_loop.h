/*
 * rt_loop.h -- a fixed-rate pthread that steps a ck_kernel (no Python in here).
 *
 * Each tick (absolute deadlines, clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)): copy the
 * latest state written by rt_write_state, step the kernel under the kernel lock, publish
 * the output for rt_read_output, and record the period error.  Nothing is allocated after
 * rt_init; the caller owns the rt_loop memory (it is large: the histogram).
 */
#ifndef SITEBOT_RT_LOOP_H
#define SITEBOT_RT_LOOP_H

#include <pthread.h>

#include "control_kernel.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RT_HIST_BINS 20000            /* 1 us bins: period errors up to 20 ms */
#define RT_STATE_SIZE (2 * CK_MAX_JOINTS + 4)
#define RT_OUT_SIZE (5 * CK_MAX_JOINTS + 12)

typedef struct rt_stats {
    double mean_period_s;
    double std_period_s;
    double p99_error_s;               /* 99th percentile of |period - nominal| (1 us bins) */
    double max_error_s;
    long long overruns;               /* deadlines missed (ticks skipped) */
    long long ticks;                  /* kernel steps done */
} rt_stats;

typedef struct rt_loop {
    ck_kernel *kernel;
    pthread_mutex_t *kernel_lock;     /* taken around every ck_step */
    long long period_ns;
    double period_s;
    pthread_t thread;
    int running;
    int stop_flag;                    /* atomic */
    int realtime;                     /* 1 when the thread got SCHED_FIFO */
    /* state: written by rt_write_state, read by the thread */
    pthread_mutex_t state_lock;
    double state[RT_STATE_SIZE];      /* q (n), qd (n), wheel_q (2), wheel_qd (2) */
    /* output + statistics: written by the thread, read by rt_read_output / rt_get_stats */
    pthread_mutex_t out_lock;
    double out[RT_OUT_SIZE];
    double scratch[RT_OUT_SIZE];      /* thread-private output of the step */
    long long ticks;
    long long overruns;
    long long n_periods;
    double mean_period, m2_period;    /* Welford [s], [s^2] */
    double max_error;                 /* [s] */
    unsigned int hist[RT_HIST_BINS];  /* single writer (the thread), relaxed atomics */
    unsigned int hist_over;
} rt_loop;

/* 0 on success; -1: bad rate or a mutex could not be made. */
int rt_init(rt_loop *L, ck_kernel *kernel, pthread_mutex_t *kernel_lock, double rate_hz);
/* 0 on success, else an errno value. */
int rt_start(rt_loop *L);
/* Joins the thread; 0 if it was not running. */
int rt_stop(rt_loop *L);
void rt_destroy(rt_loop *L);
void rt_write_state(rt_loop *L, const double *q, const double *qd, const double *wheel_q,
                    const double *wheel_qd);
/* Copies the latest output (ck_output_size(n) doubles); returns the tick it came from. */
long long rt_read_output(rt_loop *L, double *out);
void rt_get_stats(rt_loop *L, rt_stats *stats);
double rt_now_s(void);

#ifdef __cplusplus
}
#endif

#endif /* SITEBOT_RT_LOOP_H */
