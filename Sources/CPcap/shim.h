// libpcap (Debian: libpcap-dev): per-interface captures readable by tcpdump and Wireshark.
#include <pcap/pcap.h>
