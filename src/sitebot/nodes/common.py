"""Shared rclpy glue: parameter declaration from a schema, QoS profiles, node main()."""
from __future__ import annotations

import sys
from typing import Any, Callable, Iterable

import rclpy
import rclpy.executors
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType, SetParametersResult)
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from sitebot.config.params import ParamSpec, ParamType, validate_value
from sitebot.errors import ParameterError, SitebotError

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
    """Init rclpy, build the node, spin until Ctrl-C or shutdown, clean up.

    :param threads: > 1 spins a MultiThreadedExecutor with that many threads (nodes whose
        callbacks block, e.g. action servers that wait on other actions).
    :param on_exit: called with the node before it is destroyed (best effort: e.g. a last
        zero velocity command); its exceptions are swallowed.

    Configuration errors (:class:`SitebotError`) are reported as one line and exit code 2,
    not a traceback.
    """
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        if threads > 1:
            ex = rclpy.executors.MultiThreadedExecutor(num_threads=threads)
            ex.add_node(node)
            try:
                ex.spin()
            finally:
                ex.shutdown()
        else:
            rclpy.spin(node)
        return 0
    except KeyboardInterrupt:
        return 0
    except SitebotError as e:
        print(f"[ERROR] {e}", file=sys.stderr)
        return 2
    except rclpy.executors.ExternalShutdownException:
        return 0
    except RuntimeError:
        # a message taken while SIGINT tears the context down ("Unable to convert call
        # argument"): the shutdown was asked for, not a failure of the node
        if not rclpy.ok():
            return 0
        raise
    finally:
        if node is not None:
            if on_exit is not None:
                try:
                    on_exit(node)
                except Exception:  # noqa: BLE001 - best effort on the way out
                    pass
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
