"""Where the costmap node gets the robot's pose: a small interface, with a nav_msgs/Odometry implementation.

tf2 is not installable from PyPI, so the node does not call tf2 directly. It asks a ``PoseSource`` for
``T_global_child`` at a stamp. ``OdometryPoseSource`` answers from an Odometry topic (``header.frame_id`` is the
global frame, ``child_frame_id`` the child: the robot's base or the camera itself). On a ROS machine a
``Tf2PoseSource`` with the same two methods can wrap ``tf2_ros.Buffer.lookup_transform(global, child, stamp)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import QoSProfile

from seg_perception.bag import read_messages
from seg_perception.core.errors import InputRejected
from seg_perception.core.geometry.pose import PoseTrack
from seg_perception.ros.convert import stamp_to_ns


class OdometryPoseSource(PoseTrack):
    """A ``PoseTrack`` fed by a nav_msgs/Odometry topic (``header.frame_id`` = global frame, ``child_frame_id`` = the
    robot's base or the camera itself); see ``PoseTrack`` for the checks. Refused messages raise
    ``InputRejected``, which the node's callback guard counts (``rejected``).

    tf2 is not installable from PyPI here, so the node does not call tf2 directly; a tf2 source can replace this
    with the same ``pose_at`` (``tf2_ros.Buffer.lookup_transform(global, child, stamp)``).
    """

    def __init__(
        self,
        node: Node,
        topic: str,
        qos: QoSProfile,
        on_jump: Callable[[float], None],
        max_jump_m: float = 1.0,
        buffer_s: float = 10.0,
        time_jump_ns: int = 1_000_000_000,
        on_time_jump: Callable[[int, float], None] = lambda _t, _s: None,
    ) -> None:
        super().__init__(max_jump_m, time_jump_ns, buffer_s, on_jump, on_time_jump)
        node.create_subscription(Odometry, topic, self.on_odometry, qos)

    def on_odometry(self, msg: Odometry) -> None:
        """Validate and store one odometry message (``InputRejected`` for a bad one)."""
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        self.add(stamp_to_ns(msg.header.stamp), (p.x, p.y, p.z), (q.x, q.y, q.z, q.w), msg.header.frame_id,
                 msg.child_frame_id)  # fmt: skip


class BagOdometry:
    """The Odometry messages of a bag, fed into a ``PoseTrack`` in stamp order up to a stamp: what the live costmap
    node would have received by the time it handles a cloud with that stamp (``seg-perception process``, renders).

    Attributes:
        rejected: reason -> count of refused odometry messages.
    """

    def __init__(self, bag: object, topic: str, track: PoseTrack) -> None:
        from rclpy.serialization import deserialize_message

        msgs = [deserialize_message(m.data, Odometry) for m in read_messages(bag, {topic})]  # type: ignore[arg-type]
        self.messages = sorted(((stamp_to_ns(m.header.stamp), m) for m in msgs), key=lambda sm: sm[0])
        self.track = track
        self.rejected: Counter[str] = Counter()
        self._next = 0

    def advance_to(self, stamp_ns: int) -> None:
        """Feed every message stamped at or before ``stamp_ns`` that was not fed yet."""
        while self._next < len(self.messages) and self.messages[self._next][0] <= stamp_ns:
            t, msg = self.messages[self._next]
            self._next += 1
            p, q = msg.pose.pose.position, msg.pose.pose.orientation
            try:
                self.track.add(t, (p.x, p.y, p.z), (q.x, q.y, q.z, q.w), msg.header.frame_id, msg.child_frame_id)
            except InputRejected as e:
                self.rejected[e.reason] += 1
