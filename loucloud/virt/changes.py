"""The face's verbs that change a VM over its life (issue 14): snapshots, saved states
and clones, migration between hosts, resize and disks. A part of ``Hypervisor``
(virt/driver.py), which inherits them; they run through its ``_query`` and ``_act``
like the rest of the face."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import blockdevs, migration, sizing, snapshots
from .blockdevs import DataDisks, DiskPlaces, PoolVolume
from .migration import MigrationJob, MigrationPlan
from .sizing import Resized, Sizes
from .snapshots import Reverted, SnapshotInfo
from .storage import Volume

if TYPE_CHECKING:
    from .driver import Hypervisor



class ChangeVerbs:
    """Mixed into Hypervisor, whose ``_query`` and ``_act`` (bounds, the pool) these
    verbs call."""

    # -- snapshots, saved states, clones (issue 14) ------------------------------------
    def snapshots(self, uuid: str) -> list[SnapshotInfo]:
        """Every snapshot libvirt keeps of the domain, oldest first."""
        return self._query(snapshots.list_snapshots, uuid)

    # A snapshot with memory, a revert and a delete write or read up to the domain's
    # whole memory: bounded by its size, patient (the face's _long: NoAnswer when no
    # answer comes in time, the outcome unknown).
    def create_snapshot(self, uuid: str, name: str, memory: bool) -> SnapshotInfo:
        """An internal snapshot: with ``memory`` of a running or paused domain, else of
        a shut-off one's disks. Raises AlreadyExists, InvalidState, NoAnswer."""
        if memory:
            return self._long(snapshots.create_snapshot, uuid, name, memory)
        return self._act(snapshots.create_snapshot, uuid, name, memory)

    def revert_snapshot(self, uuid: str, name: str, start_after: bool,
                        disks: DataDisks | None = None) -> Reverted:
        """Back to the snapshot; the domain's state after, and (with ``disks``: the data
        disks LouCloud's records give it) what was done so that it keeps them. Raises
        SnapshotNotFound, InvalidState (a disk of the snapshot deleted since),
        NotSupported (an external snapshot), NoAnswer."""
        return self._long(snapshots.revert_snapshot, uuid, name, start_after, disks,
                          snapshot=name)

    def snapshot_sizes(self, uuid: str, name: str) -> Sizes | None:
        """The vCPUs and memory of the definition the snapshot puts back (None: it holds
        none). Raises SnapshotNotFound."""
        return self._query(snapshots.snapshot_sizes, uuid, name)

    def delete_snapshot(self, uuid: str, name: str) -> bool:
        """Delete the snapshot (and its data in the disk); whether there was one.
        Raises NoAnswer."""
        return self._long(snapshots.delete_snapshot, uuid, name)

    def drop_snapshots(self, uuid: str) -> int:
        """Delete every snapshot of the shut-off domain (its disk is being replaced).
        Raises NoAnswer."""
        return self._long(snapshots.drop_snapshots, uuid, each_snapshot=True)

    def has_saved_state(self, uuid: str) -> bool:
        """Whether the domain holds a saved memory state (managed save)."""
        return self._query(snapshots.has_saved_state, uuid)

    def discard_saved_state(self, uuid: str) -> bool:
        """Delete the saved memory state (the next start boots); whether there was one."""
        return self._act(snapshots.discard_saved_state, uuid)

    def clone_volume(self, pool_name: str, source: str, name: str, capacity: int,
                     backing_path: str | None, backing_format: str | None, *,
                     timeout: float = 3600) -> tuple[Volume, bool]:
        """A copy of a volume of the pool (an overlay on the same image when it has
        one); whether the backing image was kept. Its own, longer bound."""
        return self.pool.call(self.uri, snapshots.clone_volume, pool_name, source, name,
                              capacity, backing_path, backing_format, timeout=timeout)
    # -- migration (issue 14) ---------------------------------------------------------
    def migration_plan(self, uuid: str) -> MigrationPlan:
        """The domain's state, definitions (for another host) and drives."""
        return self._query(migration.plan, uuid)

    def retarget_xml(self, text: str, vnc_listen: str | None,
                     paths: dict[str, str]) -> str:
        """A domain's XML with another host's VNC address and file paths (no call)."""
        return migration.for_target(text, vnc_listen, paths)

    def migrate_live(self, uuid: str, target: "Hypervisor", *, uri: str, listen: str,
                     disks: list[str], dest_xml: str, persist_xml: str,
                     timeout: float, bandwidth_mib: int = 0) -> None:
        """Live-migrate the running domain to ``target`` (client-managed: this process
        holds both connections; see virt/migration.py). Blocks until it runs there or
        failed; waits at most ``timeout``. Raises VirtError (HostUnavailable when this
        host's connection broke)."""
        dconn = target._act(migration.connection)
        self.pool.call(self.uri, migration.migrate_live, dconn, uuid, uri, listen, disks,
                       dest_xml, persist_xml, bandwidth_mib, timeout=timeout)

    def migration_job(self, uuid: str) -> MigrationJob | None:
        """The domain's job statistics (None: no job)."""
        return self._query(migration.job, uuid)

    def abort_migration(self, uuid: str) -> bool:
        """Cancel the domain's migration; whether one was under way."""
        return self._act(migration.abort, uuid)

    def locate(self, uuid: str) -> str | None:
        """The domain's state here, None when it is not defined on this host."""
        return self._query(migration.locate, uuid)

    def define_xml(self, text: str) -> None:
        """Define a domain from the XML another host gave (offline migration)."""
        self._act(migration.define_xml, text)

    def volume_size(self, pool_name: str, name: str) -> int:
        """A volume's file size in bytes (what a copy streams)."""
        return self._query(migration.volume_size, pool_name, name)

    def copy_volume_to(self, target: "Hypervisor", pool_name: str, name: str,
                       progress=None, *, timeout: float = 3600) -> Volume:
        """Stream a volume of this host's pool into ``target``'s pool (same name)."""
        dconn = target._act(migration.connection)
        return self.pool.call(self.uri, migration.copy_volume, dconn, pool_name, name,
                              progress, timeout=timeout)

    # -- resize and disks (issue 14) -------------------------------------------------
    def sizes(self, uuid: str) -> Sizes:
        """The domain's vCPUs and memory: defined (the next boot's) and live."""
        return self._query(sizing.sizes, uuid)

    def resize(self, uuid: str, vcpus: int | None, memory_mib: int | None,
               vcpu_room: int, memory_room_mib: int) -> Resized:
        """New vCPUs and memory (None: unchanged) in the definition, and in the running
        domain where it can take them (the result says what waits for the next boot).
        The definition's maximum rises to the rooms when the size passes it. Raises
        VirtError (nothing changed), DomainNotFound."""
        return self._act(sizing.resize, uuid, vcpus, memory_mib, vcpu_room,
                         memory_room_mib, min(20.0, self.bounds.action / 3))

    def attach_disk(self, uuid: str, path: str, target: str,
                    running: bool | None = None) -> bool:
        """Attach a qcow2 volume as virtio disk ``target`` (live when the domain runs:
        returns True; one the running guest still holds goes back into the definition).
        ``running``: what the caller believes (a hot-plug tried at once). Raises
        AlreadyExists, VirtError when the hypervisor or the guest refuses."""
        return self._act(blockdevs.attach_disk, uuid, path, target, running)

    def start_data_volume(self, pool_name: str, name: str,
                          capacity: int) -> Callable[[], str]:
        """Start making a blank data volume in the pool and return at once (the caller
        does its own work meanwhile); calling what this returns waits for its file.
        Raises (then) PoolFull: the pool has less room, nothing made; VirtError."""
        return self.pool.start(self.uri, blockdevs.new_data_volume, pool_name, name,
                               capacity, timeout=self.bounds.action)

    def disk_places(self, uuid: str) -> DiskPlaces:
        """Where the domain has its disks: target -> file, defined and live."""
        return self._query(blockdevs.disk_places, uuid)

    def volume_path(self, pool_name: str, name: str) -> str:
        """The file of a volume of the pool. Raises VolumeNotFound."""
        return self._query(blockdevs.volume_path, pool_name, name)

    def detach_disk(self, uuid: str, target: str) -> bool:
        """Take disk ``target`` out of the domain (definition and live). False: the
        running guest has not let go of it yet."""
        return self._act(blockdevs.detach_disk, uuid, target,
                         min(10.0, self.bounds.action / 3))

    def grow_disk(self, uuid: str, target: str, pool_name: str, volume_name: str,
                  capacity: int) -> bool:
        """Grow a disk to ``capacity`` bytes (live through QEMU when the domain runs:
        returns True). Raises InvalidState for a smaller size."""
        return self._act(blockdevs.grow_disk, uuid, target, pool_name, volume_name, capacity)

    def pool_room(self, pool_name: str) -> int:
        """Bytes free in LouCloud's pool."""
        return self._query(blockdevs.pool_room, pool_name)

    def volume_sizes(self, pool_name: str, names: list[str]) -> dict[str, tuple[int, int]]:
        """(capacity, allocation) of these volumes of the pool."""
        return self._query(blockdevs.volume_sizes, pool_name, names)

    def pool_volumes(self, pool_name: str) -> list[PoolVolume]:
        """Every volume of the pool, after a refresh (a longer bound: a full pool)."""
        return self._query(blockdevs.pool_volumes, pool_name, factor=3.0)

    def delete_unused_volume(self, pool_name: str, name: str) -> None:
        """Delete a volume no domain and no other volume uses. Raises InvalidState
        naming its users, VolumeNotFound."""
        self._act(blockdevs.delete_unused, pool_name, name)
