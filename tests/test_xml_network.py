"""loucloud/virt/xml/network.py and the domain capabilities parser: NAT networks
LouCloud makes, what any network says of itself, DHCP host entries; each accepted by
libvirt's own test driver."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest

from loucloud.virt import xml
from tests.factories import write_test_node

HOSTILE = """lab</name><forward mode='bridge'/><name>x"""


@pytest.fixture
def conn(tmp_path):
    libvirt.registerErrorHandler(lambda *a: None, None)
    connection = libvirt.open(write_test_node(tmp_path / "n.xml"))
    yield connection
    connection.close()


def test_nat_network_round_trip():
    desc = xml.parse_network(xml.build_nat_network("lab", "10.20.0.0/24", "lcbr0"))
    assert (desc.name, desc.mode, desc.bridge, desc.managed) == ("lab", "nat", "lcbr0", True)
    [subnet] = desc.subnets
    assert (subnet.address, subnet.prefix, subnet.family) == ("10.20.0.1", 24, "ipv4")
    assert (subnet.dhcp_start, subnet.dhcp_end) == ("10.20.0.2", "10.20.0.254")
    assert str(subnet.network) == "10.20.0.0/24" and subnet.hosts == ()


def test_small_subnets_keep_the_host_and_broadcast_out_of_the_range():
    [subnet] = xml.parse_network(xml.build_nat_network("s", "10.9.0.8/29", "b")).subnets
    assert (subnet.address, subnet.dhcp_start, subnet.dhcp_end) == \
        ("10.9.0.9", "10.9.0.10", "10.9.0.14")


def test_a_network_made_elsewhere_is_not_managed_and_netmask_is_read():
    text = ("<network><name>default</name><forward mode='nat'/><bridge name='virbr0'/>"
            "<ip address='192.168.122.1' netmask='255.255.255.0'><dhcp>"
            "<range start='192.168.122.2' end='192.168.122.254'/>"
            "<host mac='52:54:00:00:00:01' ip='192.168.122.50'/></dhcp></ip>"
            "<ip family='ipv6' address='fd00::1' prefix='64'/></network>")
    desc = xml.parse_network(text)
    assert not desc.managed and desc.mode == "nat"
    v4 = desc.ipv4()
    assert v4.prefix == 24 and v4.hosts == (xml.DhcpHost("52:54:00:00:00:01",
                                                          "192.168.122.50"),)
    assert [s.family for s in desc.subnets] == ["ipv4", "ipv6"]


def test_no_forward_is_isolated():
    assert xml.parse_network("<network><name>i</name></network>").mode == "isolated"


def test_hostile_name_stays_text():
    root = ET.fromstring(xml.build_nat_network(HOSTILE, "10.1.0.0/24", "b"))
    assert root.findtext("name") == HOSTILE and len(root.findall("forward")) == 1


def test_dhcp_host_entry():
    host = ET.fromstring(xml.build_dhcp_host("52:54:00:aa:bb:cc", "10.1.0.7", "web-1"))
    assert host.attrib == {"mac": "52:54:00:aa:bb:cc", "ip": "10.1.0.7", "name": "web-1"}


def test_libvirt_defines_the_network_and_takes_a_fixed_address(conn):
    net = conn.networkDefineXML(xml.build_nat_network("lab", "10.20.0.0/24", "lcbr1"))
    net.create()
    net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
               libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1,
               xml.build_dhcp_host("52:54:00:aa:bb:cc", "10.20.0.9"),
               libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG | libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE)
    desc = xml.parse_network(net.XMLDesc(0))
    assert desc.managed and desc.mode == "nat" and desc.bridge == "lcbr1"
    assert desc.ipv4().hosts == (xml.DhcpHost("52:54:00:aa:bb:cc", "10.20.0.9"),)


DOMCAPS = """<domainCapabilities>
  <os supported='yes'><enum name='firmware'><value>bios</value><value>efi</value></enum></os>
  <cpu>
    <mode name='host-passthrough' supported='yes'/>
    <mode name='host-model' supported='yes'>
      <model fallback='forbid'>EPYC-Rome</model><vendor>AMD</vendor>
      <feature policy='require' name='x2apic'/>
    </mode>
  </cpu>
</domainCapabilities>"""


def test_domain_capabilities():
    caps = xml.parse_domain_capabilities(DOMCAPS)
    assert caps.firmwares == ("bios", "efi")
    cpu = ET.fromstring(caps.host_model_cpu)
    assert cpu.tag == "cpu" and cpu.findtext("model") == "EPYC-Rome"
    assert cpu.find("feature").get("name") == "x2apic"


def test_domain_capabilities_without_host_model():
    caps = xml.parse_domain_capabilities("<domainCapabilities><cpu><mode name='host-model' "
                                         "supported='no'/></cpu></domainCapabilities>")
    assert caps.firmwares == () and caps.host_model_cpu is None
