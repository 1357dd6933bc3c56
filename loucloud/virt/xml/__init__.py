"""Small ElementTree builders and parsers for libvirt's XML, by kind. Never string
formatting: user text becomes element text or an attribute value through the library."""
from .capabilities import (  # noqa: F401
    Capabilities,
    DomainCapabilities,
    Guest,
    parse_capabilities,
    parse_domain_capabilities,
)
from .common import to_string  # noqa: F401
from .domain import (  # noqa: F401
    AGENT_CHANNEL,
    CPU_MODES,
    LOUCLOUD_NS,
    DomainDesc,
    DomainSpec,
    Nic,
    build_cdrom,
    build_domain,
    install_drive,
    parse_domain,
    screen_password,
)
from .network import (  # noqa: F401
    DhcpHost,
    NetworkDesc,
    Subnet,
    build_dhcp_host,
    build_nat_network,
    parse_network,
)
from .storage import (  # noqa: F401
    PoolDesc,
    VolumeDesc,
    build_blank_volume,
    build_dir_pool,
    build_overlay_volume,
    build_raw_volume,
    parse_pool,
    parse_volume,
)
from .disks import (  # noqa: F401,E402  (issue 14: a domain's disks)
    DiskDesc,
    build_disk,
    next_target,
    parse_disks,
    with_disk,
    without_disk,
)
