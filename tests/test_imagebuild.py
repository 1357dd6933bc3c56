"""The image cache of `manage.py images build` (loucloud/imagebuild.py): a cached image
is used again and marked used; another recipe's image goes only once nobody has used it
for a while (two checkouts of different recipes on one machine share the cache)."""
from __future__ import annotations

import os
import time

from loucloud import imagebuild


def test_a_cached_image_is_used_again_and_marked_used(tmp_path):
    image = imagebuild.cached_path(tmp_path)
    image.write_bytes(b"qcow2")
    long_ago = time.time() - 30 * 86400
    os.utime(image, (long_ago, long_ago))
    said = []
    assert imagebuild.build(tmp_path, say=said.append) == image
    assert said == [f"image: {image} (built before)"]
    assert image.stat().st_mtime > time.time() - 60


def test_other_recipes_images_go_only_when_unused_for_long(tmp_path):
    keep = imagebuild.cached_path(tmp_path)
    recent, stale = (tmp_path / "loucloud-debian-bookworm-000000000001.qcow2",
                     tmp_path / "loucloud-debian-bookworm-000000000002.qcow2")
    other = tmp_path / "unrelated.qcow2"
    now = time.time()
    for path, age_days in ((keep, 100), (recent, imagebuild.KEEP_UNUSED_DAYS - 1),
                           (stale, imagebuild.KEEP_UNUSED_DAYS + 1), (other, 100)):
        path.write_bytes(b"qcow2")
        os.utime(path, (now - age_days * 86400,) * 2)
    assert imagebuild.forget_unused(keep, now) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (keep, recent, other))
