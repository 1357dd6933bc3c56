"""How far a VM can grow while it runs (issue 14): the policy for ``VM.max_vcpus`` and
``VM.max_memory_mib``, fixed at create and raised by a resize past them.

A VM's domain is defined with room above its sizes: its <vcpu> maximum and its
<memory> (with <currentMemory> its size) are four times its template's vCPUs and
memory, but never past 16 vCPUs / 16 GiB, and never below the sizes themselves. A
running VM grows up to that room at once (vCPU hot-plug, the memory balloon); past
it, at its next boot. Quota counts the sizes.

Memory room only for Linux guests, whose kernels load the balloon driver early. A
guest sees its whole <memory> until its balloon driver takes the rest back, so one
without the driver (Windows without its virtio drivers, which also zeroes all of its
memory at boot) would keep, and touch, four times its size; its memory grows at its
next boot instead. The room is not free for the others either: a snapshot with memory and
a migration walk all of it (bench snapshots: a 1 GiB VM with 4 GiB of room takes
174-295 ms to snapshot against 54-85 ms without)."""
from __future__ import annotations

ROOM_FACTOR = 4
ROOM_MAX_VCPUS = 16
ROOM_MAX_MEMORY_MIB = 16 * 1024


def balloons(image) -> bool:
    """Whether VMs of this image give unused memory back from early in their boot."""
    return image.os_type == "linux"


def room_for(vcpus: int, memory_mib: int, memory_room: bool = True) -> tuple[int, int]:
    """(max vCPUs, max memory in MiB) of a VM of these sizes (``memory_room`` False: no
    memory above its size, see balloons())."""
    return (max(vcpus, min(vcpus * ROOM_FACTOR, ROOM_MAX_VCPUS)),
            max(memory_mib, min(memory_mib * ROOM_FACTOR, ROOM_MAX_MEMORY_MIB))
            if memory_room else memory_mib)
