"""How far a VM can grow while it runs (issue 14): the policy for ``VM.max_vcpus`` and
``VM.max_memory_mib``, fixed at create and raised by a resize past them.

A VM's domain is defined with room above its sizes: its <vcpu> maximum and its
<memory> (with <currentMemory> its size) are four times its template's vCPUs and
memory, but never past 16 vCPUs / 16 GiB, and never below the sizes themselves. A
running VM grows up to that room at once (vCPU hot-plug, the memory balloon); past
it, at its next boot. The room costs nothing while unused: QEMU allocates a guest's
memory as it touches it, the balloon holds the rest, and quota counts the sizes."""
from __future__ import annotations

ROOM_FACTOR = 4
ROOM_MAX_VCPUS = 16
ROOM_MAX_MEMORY_MIB = 16 * 1024


def room_for(vcpus: int, memory_mib: int) -> tuple[int, int]:
    """(max vCPUs, max memory in MiB) of a VM of these sizes."""
    return (max(vcpus, min(vcpus * ROOM_FACTOR, ROOM_MAX_VCPUS)),
            max(memory_mib, min(memory_mib * ROOM_FACTOR, ROOM_MAX_MEMORY_MIB)))
