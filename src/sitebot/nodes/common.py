"""Shared rclpy glue: parameter declaration from a schema, QoS profiles, node main()."""
from __future__ import annotations

import sys
import threading
from typing import Any, Callable, Iterable

import rclpy
import rclpy.executors
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType, SetParametersResult)
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from sitebot.config.params import ParamSpec, ParamType, validate_value
from sitebot.errors import ParameterError, SitebotError
from sitebot.nodes.executors import executor_for, spin_once
from sitebot.nodes.stopping import StopSignals, bound_teardown, exit_now

__all__ = ["QOS_SENSOR", "QOS_LATCHED", "QOS_COMMAND", "QOS_STATE", "declare_schema",
           "run_node"]

#: Sensor streams: best effort, keep last (a late sample is worthless).
QOS_SENSOR = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                        reliability=ReliabilityPolicy.BEST_EFFORT,
                        durability=DurabilityPolicy.VOLATILE)
#: Latched state (robot_description, maps, tf_static): late joiners get the last value.
QOS_LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: Commands: reliable, short queue.
QOS_COMMAND = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
#: Periodic state (odometry, joint_states, tf): reliable keep-last.
QOS_STATE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)

_ROS_TYPES = {
    ParamType.BOOL: ParameterType.PARAMETER_BOOL,
    ParamType.INT: ParameterType.PARAMETER_INTEGER,
    ParamType.FLOAT: ParameterType.PARAMETER_DOUBLE,
    ParamType.STRING: ParameterType.PARAMETER_STRING,
    ParamType.FLOAT_ARRAY: ParameterType.PARAMETER_DOUBLE_ARRAY,
    ParamType.INT_ARRAY: ParameterType.PARAMETER_INTEGER_ARRAY,
    ParamType.STRING_ARRAY: ParameterType.PARAMETER_STRING_ARRAY,
}


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    d = ParameterDescriptor(name=spec.name, type=_ROS_TYPES[spec.type],
                            description=spec.description + (f" [{spec.unit}]" if spec.unit else ""),
                            read_only=spec.read_only,
                            additional_constraints="accepted: " + spec.accepted(),
                            # an integer given for a float parameter ('0' on a launch command
                            # line) is accepted and converted by the schema, not refused
                            dynamic_typing=spec.type is ParamType.FLOAT)
    if spec.type is ParamType.FLOAT and (spec.min_value is not None or spec.max_value is not None):
        d.floating_point_range = [FloatingPointRange(
            from_value=float(spec.min_value if spec.min_value is not None else -sys.float_info.max),
            to_value=float(spec.max_value if spec.max_value is not None else sys.float_info.max),
            step=0.0)]
    if spec.type is ParamType.INT and (spec.min_value is not None or spec.max_value is not None):
        d.integer_range = [IntegerRange(
            from_value=int(spec.min_value if spec.min_value is not None else -2**63),
            to_value=int(spec.max_value if spec.max_value is not None else 2**63 - 1), step=1)]
    return d


#: array parameter types; rclpy needs the type itself to declare an empty array default
_EMPTY = {ParamType.FLOAT_ARRAY: rclpy.Parameter.Type.DOUBLE_ARRAY,
          ParamType.INT_ARRAY: rclpy.Parameter.Type.INTEGER_ARRAY,
          ParamType.STRING_ARRAY: rclpy.Parameter.Type.STRING_ARRAY}


def _typed_default(spec: ParamSpec) -> Any:
    if spec.type in _EMPTY and not spec.default:
        return _EMPTY[spec.type]
    return spec.default


def declare_schema(node: Node, schema: Iterable[ParamSpec],
                   on_change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Declare every parameter of ``schema`` on ``node`` and validate the values it starts with.

    Raises :class:`ParameterError` (naming the parameter and the accepted values) if a value
    given at start-up (parameter file, launch, command line) is invalid. Later changes through
    ``set_parameters`` are refused with a reason naming the parameter and its range (rclpy's
    own range check answers first for numbers out of the declared range; the schema checks
    everything else); ``on_change`` receives the accepted new values.
    """
    specs = {s.name: s for s in schema}
    values: dict[str, Any] = {}
    for spec in specs.values():
        try:
            param = node.declare_parameter(spec.name, _typed_default(spec), _descriptor(spec))
        except Exception as e:  # rclpy raises its own exceptions for type/range violations
            raise ParameterError(f"node '{node.get_name()}': parameter '{spec.name}': {e}; "
                                 f"accepted: {spec.accepted()}") from None
        value = param.value
        if value is None:
            value = spec.default
        if spec.type in _EMPTY and value is not None:
            value = list(value)
        try:
            values[spec.name] = validate_value(spec, value)
        except ParameterError as e:
            raise ParameterError(f"node '{node.get_name()}': {e}") from None

    def _on_set(params: list[rclpy.Parameter]) -> SetParametersResult:
        accepted: dict[str, Any] = {}
        for p in params:
            spec = specs.get(p.name)
            if spec is None:
                continue
            if spec.read_only:
                return SetParametersResult(successful=False,
                                           reason=f"parameter '{p.name}' is read-only")
            try:
                v = p.value
                if spec.type in _EMPTY and v is not None:
                    v = list(v)
                accepted[p.name] = validate_value(spec, v)
            except ParameterError as e:
                return SetParametersResult(successful=False, reason=str(e))
        values.update(accepted)
        if on_change and accepted:
            on_change(dict(accepted))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(_on_set)
    return values


def run_node(factory: Callable[[], Node], args: list[str] | None = None,
             threads: int = 1, on_exit: Callable[[Node], None] | None = None) -> int:
    """Init rclpy, build the node, spin until SIGINT/SIGTERM or shutdown, clean up.

    :param threads: > 1 spins a MultiThreadedExecutor with that many threads (nodes whose
        callbacks block, e.g. action servers that wait on other actions).
    :param on_exit: called with the node before it is destroyed (best effort: e.g. a last
        zero velocity command); its exceptions are swallowed.

    A stop signal (:class:`sitebot.nodes.stopping.StopSignals`) ends the spin loop after
    the callback in progress; then the executor's threads finish (or are abandoned after
    :data:`_CALLBACK_GRACE_S`), ``on_exit`` runs, the node is destroyed (a teardown that
    deadlocks inside DDS is ended: :func:`~sitebot.nodes.stopping.bound_teardown`), rclpy
    shut down, and the process ends at once (buffers flushed, the interpreter's teardown
    skipped): exit code 0, no traceback.  A signal during the build interrupts it.  A process
    still there :data:`~sitebot.nodes.stopping.SHUTDOWN_DEADLINE_S` after the signal is
    ended (one warning line, exit code 0).  Configuration errors
    (:class:`SitebotError`) are one line and exit code 2, not a traceback.
    """
    stop = StopSignals()
    stop.install()
    node, code = None, 0
    try:
        # rclpy's own handlers would shut the context down from their signal thread under a
        # running callback or take_message (RCLError / RuntimeError, exit code 1)
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        node = factory()
        from sitebot.nodes import barrier_ack  # (imports this module's QoS profiles)
        barrier_ack.install(node)        # a participant of the simulator's barrier, if asked
        stop.interruptible = False       # from here a signal only asks the loop to end
        stop.name = node.get_name()
        _spin(node, threads, stop)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    except SitebotError as e:
        if not stop.requested.is_set():
            print(f"[ERROR] {e}", file=sys.stderr)
            code = 2
    except Exception as e:
        if not stop.requested.is_set():
            raise
        # the echo of a stop that interrupted the build (a KeyboardInterrupt raised inside
        # rclpy or an extension can come out as another exception): not a failure
        print(f"[INFO] [{stop.name}]: stopped ({type(e).__name__} on the way: {e})",
              file=sys.stderr)
    finally:
        stop.interruptible = False
        if stop.requested.is_set():
            bound_teardown()
        if node is not None:
            if on_exit is not None:
                try:
                    on_exit(node)
                except Exception:  # noqa: BLE001 - best effort on the way out
                    pass
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    if stop.requested.is_set():
        # all is closed: skip the interpreter's teardown (torch's took 1 s, 9 s under load)
        # and the join of threads left behind
        exit_now(code)
    stop.restore()                       # the process goes on (e.g. a test)
    return code


#: how long the spin loop waits for work before it looks at the stop flag again [s]
_SPIN_WAKE_S = 0.25
#: after a stop signal, callbacks still running in executor threads get this long [s]
_CALLBACK_GRACE_S = 2.0


def _spin(node: Node, threads: int, stop: "StopSignals") -> None:
    """Spin ``node`` until a stop signal or the context's shutdown."""
    ex = executor_for(node, threads)        # the parameter ``executor``
    try:
        while not stop.requested.is_set() and ex.context.ok():
            spin_once(ex, _SPIN_WAKE_S)
    finally:
        # callbacks still running in executor threads finish before the node is destroyed;
        # one blocked for good (an action waiting on another) is left to the watchdog
        closer = threading.Thread(target=_close_executor, args=(ex,), daemon=True)
        closer.start()
        closer.join(_CALLBACK_GRACE_S)
        if closer.is_alive():
            print(f"[WARN] [{stop.name}]: callbacks still running {_CALLBACK_GRACE_S:g} s "
                  "after the stop signal: abandoning them", file=sys.stderr)


def _close_executor(ex: rclpy.executors.Executor) -> None:
    """Join the executor's pool, then shut it down (rclpy's MultiThreadedExecutor.shutdown
    destroys its guard condition first, and each callback still running then fails with
    InvalidHandle: "exception never retrieved")."""
    pool = getattr(ex, "_executor", None)      # MultiThreadedExecutor's ThreadPoolExecutor
    if pool is not None:
        pool.shutdown(wait=True)
    ex.shutdown()
