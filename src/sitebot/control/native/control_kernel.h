/*
 * control_kernel.h -- the C core of the sitebot control kernel.
 *
 * Contract: docs/control.md.  The pure-Python reference (src/sitebot/control/kernel_py.py)
 * mirrors this file operation for operation.  No Python, no global state, no allocation:
 * the caller provides the kernel struct and the trajectory memory (ck_memory_doubles()
 * doubles) once, at ck_init.  C99 + <math.h>.
 *
 * Units: positions [rad | m], velocities [rad/s | m/s], accelerations [rad/s^2 | m/s^2],
 * efforts [N*m | N], times [s], wheel speeds [rad/s], base (v [m/s], w [rad/s]).
 */
#ifndef SITEBOT_CONTROL_KERNEL_H
#define SITEBOT_CONTROL_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CK_MAX_JOINTS 32
#define CK_MAX_POINTS_LIMIT 100000

/*
 * The enums, as X-macro lists X(C name, Python name, value): the one source of their names
 * and numbers.  The binding builds the Python IntEnums (sitebot.control.types) from these
 * lists and exports the stop categories for a check against sitebot.types.StopCategory.
 */

/* Status (what the kernel did this tick; a higher value takes priority) */
#define CK_STATUS_LIST(X)                                                                   \
    X(CK_OK, OK, 0)                                                                         \
    X(CK_STOPPING, STOPPING, 1)                   /* category 1 stop or heartbeat loss */   \
    X(CK_STOPPED, STOPPED, 2)                     /* held after a stop */                   \
    X(CK_COMMAND_TIMEOUT, COMMAND_TIMEOUT, 3)     /* base command stale: wheels braked */   \
    X(CK_HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT, 4) /* supervisor heartbeat stale: stop */    \
    X(CK_INVALID_INPUT, INVALID_INPUT, 5)         /* a non-finite input this tick: hold */  \
    X(CK_LIMIT_VIOLATION, LIMIT_VIOLATION, 6)     /* measured position beyond its limits */

/* Reject (result of ck_set_trajectory / ck_set_base_command) */
#define CK_REJECT_LIST(X)                                                                   \
    X(CK_ACCEPTED, ACCEPTED, 0)                                                             \
    X(CK_WRONG_SIZE, WRONG_SIZE, 1)                                                         \
    X(CK_NON_FINITE, NON_FINITE, 2)                                                         \
    X(CK_NON_MONOTONIC_TIME, NON_MONOTONIC_TIME, 3)                                         \
    X(CK_OUT_OF_LIMITS, OUT_OF_LIMITS, 4)                                                   \
    X(CK_TOO_MANY_POINTS, TOO_MANY_POINTS, 5)                                               \
    X(CK_EMPTY, EMPTY, 6)

/* stop categories (IEC 60204-1) */
#define CK_STOP_CATEGORY_LIST(X)                                                            \
    X(CK_CAT_NONE, NONE, 255)                                                               \
    X(CK_CAT0, CAT0, 0)                                                                     \
    X(CK_CAT1, CAT1, 1)                                                                     \
    X(CK_CAT2, CAT2, 2)

/* Heartbeat (result of ck_set_supervisor) */
#define CK_HEARTBEAT_LIST(X)                                                                \
    X(CK_HB_ACCEPTED, ACCEPTED, 0)    /* from the pinned supervisor: taken */               \
    X(CK_HB_RELEASED, RELEASED, 1)    /* taken, and its release opened the stop latch */    \
    X(CK_HB_FOREIGN, FOREIGN, 2)      /* not from the pinned supervisor: ignored, latched */ \
    X(CK_HB_SEQUENCE, SEQUENCE, 3)    /* sequence or releases went back: ignored, latched */

/* Stop latch causes (bits; 0: the latch is open).  A cause stays set until a release. */
#define CK_LATCH_LIST(X)                                                                    \
    X(CK_LATCH_START, START, 1)         /* no release since the kernel started */           \
    X(CK_LATCH_STOP, STOP, 2)           /* the supervisor asked for a stop */               \
    X(CK_LATCH_HEARTBEAT, HEARTBEAT, 4) /* the supervisor's heartbeat went stale */         \
    X(CK_LATCH_FOREIGN, FOREIGN, 8)     /* a heartbeat from another source */               \
    X(CK_LATCH_SEQUENCE, SEQUENCE, 16)  /* the pinned source's sequence went back */

/* arm interfaces */
#define CK_INTERFACE_LIST(X)                                                                \
    X(CK_IF_POSITION, POSITION, 0)                                                          \
    X(CK_IF_VELOCITY, VELOCITY, 1)                                                          \
    X(CK_IF_EFFORT, EFFORT, 2)

#define CK_ENUM_ITEM(c_name, py_name, value) c_name = value,
enum { CK_STATUS_LIST(CK_ENUM_ITEM) };
enum { CK_REJECT_LIST(CK_ENUM_ITEM) };
enum { CK_STOP_CATEGORY_LIST(CK_ENUM_ITEM) };
enum { CK_INTERFACE_LIST(CK_ENUM_ITEM) };
enum { CK_HEARTBEAT_LIST(CK_ENUM_ITEM) };
enum { CK_LATCH_LIST(CK_ENUM_ITEM) };
#undef CK_ENUM_ITEM

/* Relative slack of the segment speed check of ck_set_trajectory (|dp| <= vel_max * dt *
 * (1 + CK_SPEED_SLACK)): the segments of a trajectory sampled at exactly vel_max pass. */
#define CK_SPEED_SLACK 1e-9

/* Output layout: one array of ck_output_size(n) doubles (KernelOutput._buf); the binding
 * exports it (output_layout(n)) and sitebot.control.types builds KernelOutput from it. */
#define CK_OUT_POSITION(n) 0
#define CK_OUT_VELOCITY(n) (n)
#define CK_OUT_EFFORT(n) (2 * (n))
#define CK_OUT_POSITION_ERROR(n) (3 * (n))
#define CK_OUT_SETPOINT_VELOCITY(n) (4 * (n))
#define CK_OUT_WHEEL_VELOCITY(n) (5 * (n))
#define CK_OUT_BASE_VELOCITY(n) (5 * (n) + 2)
#define CK_OUT_ODOMETRY(n) (5 * (n) + 4)
#define CK_OUT_TRAJECTORY_TIME(n) (5 * (n) + 9)
#define CK_OUT_TRAJECTORY_ACTIVE(n) (5 * (n) + 10)
#define CK_OUT_STATUS(n) (5 * (n) + 11)
#define CK_OUT_LATCH(n) (5 * (n) + 12)
#define ck_output_size(n) (5 * (size_t)(n) + 13)

typedef struct ck_config {
    int n_joints;                       /* arm joints, 1..CK_MAX_JOINTS */
    double pos_min[CK_MAX_JOINTS];      /* [rad | m], may be -inf */
    double pos_max[CK_MAX_JOINTS];      /* [rad | m], may be +inf */
    double vel_max[CK_MAX_JOINTS];      /* [rad/s | m/s] */
    double acc_max[CK_MAX_JOINTS];      /* [rad/s^2 | m/s^2] */
    double effort_max[CK_MAX_JOINTS];   /* [N*m | N] */
    double kp[CK_MAX_JOINTS];           /* [1/s] (velocity iface) or [N*m/rad] */
    double kd[CK_MAX_JOINTS];           /* [N*m*s/rad] */
    int interface;                      /* CK_IF_* */
    double wheel_radius_m;              /* [m] */
    double wheel_separation_m;          /* [m] */
    double wheel_vel_max;               /* [rad/s] */
    double base_lin_acc_max;            /* [m/s^2] */
    double base_ang_acc_max;            /* [rad/s^2] */
    double base_lin_vel_max;            /* [m/s] */
    double base_ang_vel_max;            /* [rad/s] */
    double cmd_timeout_s;               /* [s] */
    double heartbeat_timeout_s;         /* [s] */
    int max_points;                     /* trajectory capacity */
    double limit_margin;                /* [rad | m] */
} ck_config;

/* Active trajectory: knots t[k], row-major p/v/a[k * n + i] (caller memory). */
typedef struct ck_traj {
    double *t, *p, *v, *a;
    int count;
    int quintic;
} ck_traj;

/* Accepted trajectory waiting for its start time (the user's points, caller memory). */
typedef struct ck_pending {
    double *times, *pos, *vel, *acc;
    int count;
    int has_vel, has_acc;
    double start;                       /* [s]; -inf: at the next step */
} ck_pending;

typedef struct ck_kernel {
    ck_config cfg;
    int n;
    double half_sep;                    /* [m] */
    /* supervisor and stop latch (survive ck_reset) */
    int pinned;                         /* a supervisor source is pinned */
    uint64_t src;                       /* the pinned source */
    int seq_rx;                         /* a sequence number was taken from it */
    uint64_t seq;                       /* its latest sequence number */
    uint64_t rel_seen;                  /* its latest release count */
    uint64_t rel_floor;                 /* release count when the latch last closed */
    int foreign_rx;                     /* a heartbeat from another source was seen */
    double foreign_t;                   /* kernel time of the latest one [s] */
    int hb_rx;
    double hb_stamp;                    /* [s] */
    double scale;                       /* [0, 1] */
    int cat;
    unsigned latch;                     /* CK_LATCH_* bits; 0: open */
    int cat0_latched;
    double last_t;                      /* [s] */
    /* arm setpoint */
    int sp_init;
    double q_sp[CK_MAX_JOINTS];
    double v_sp[CK_MAX_JOINTS];
    double qdt[CK_MAX_JOINTS];          /* trajectory d/dtau at the last sample */
    double qt[CK_MAX_JOINTS];           /* scratch: sampled position */
    double qddt[CK_MAX_JOINTS];         /* scratch: sampled d2/dtau2 */
    /* trajectories */
    ck_traj act;
    int has_act;
    ck_pending pend;
    int has_pend;
    double tau;                         /* trajectory time [s] */
    double s;                           /* d(tau)/dt */
    int seg;                            /* segment cursor */
    /* base */
    int cmd_state;                      /* 0 none, 1 valid, 2 invalid */
    double cmd_v, cmd_w, cmd_stamp;
    double base_v, base_w;              /* commanded after limits [m/s], [rad/s] */
    /* odometry */
    int odo_init;
    double x, y, yaw;                   /* [m], [m], [rad] */
    double wq_prev[2];                  /* [rad] */
} ck_kernel;

/* 0 when cfg is valid, else the name of the first bad field is put in *field. */
int ck_config_check(const ck_config *cfg, const char **field);

/* Doubles of trajectory memory ck_init needs for cfg. */
size_t ck_memory_doubles(const ck_config *cfg);

/* 0 on success, -1 (bad config or too little memory). mem must outlive k. */
int ck_init(ck_kernel *k, const ck_config *cfg, double *mem, size_t mem_doubles);

/* times (count), positions/velocities/accelerations (count x n, row-major; vel/acc may
 * be NULL); has_start = 0: start at the next step.  Returns a CK_* reject code. */
int ck_set_trajectory(ck_kernel *k, int count, const double *times, const double *positions,
                      const double *velocities, const double *accelerations,
                      int has_start, double start_time_s);

int ck_set_base_command(ck_kernel *k, double v_mps, double w_radps, double stamp_s);

/*
 * Stop latch (docs/control.md, "Stop latch").  The kernel starts latched (CK_LATCH_START).
 * A stop category other than NONE, a stale heartbeat, a heartbeat from a source other than
 * the pinned one, or a pinned heartbeat whose sequence does not increase (or whose release
 * count decreases) closes the latch; nothing but a release opens it: a heartbeat from the
 * pinned source with category NONE, a fresh stamp, no foreign heartbeat within the
 * heartbeat timeout, and a release count above the one it had when the latch last closed.
 *
 * ck_pin_supervisor: take `source` as the supervisor.  1: pinned (or already); 0 refused:
 * another pinned source's heartbeat is still fresh.  A new pin starts its sequence and
 * release counts afresh and leaves the latch as it is.
 */
int ck_pin_supervisor(ck_kernel *k, uint64_t source);

/* A supervisor heartbeat.  Returns a CK_HB_* code, or -1 for an unknown category (nothing
 * changed).  A non-finite stamp is taken as a stop request only (not a heartbeat). */
int ck_set_supervisor(ck_kernel *k, uint64_t source, uint64_t sequence, uint64_t releases,
                      double stamp_s, double speed_scale, int stop_category);

/* -1 when a position is not finite (nothing changed), else 0. */
int ck_reset(ck_kernel *k, const double *positions);

/* Sample the active trajectory at tau; 0 when there is none. */
int ck_sample(const ck_kernel *k, double tau, double *q, double *qd, double *qdd);

/* One tick. q, qd: n; wheel_q, wheel_qd: 2; out: ck_output_size(n).  Returns CK_* status. */
int ck_step(ck_kernel *k, double t_s, double dt_s, const double *q, const double *qd,
            const double *wheel_q, const double *wheel_qd, double *out);

#ifdef __cplusplus
}
#endif

#endif /* SITEBOT_CONTROL_KERNEL_H */
