"""The node manager's limits (ramster_nodemanager.h), shared by every r2 layer."""

R2NM_API_VERSION = 5
R2NM_MAX_NODES = 255
R2NM_INVALID_NODE_NUM = 255
#: host name, group name, cluster name: 64 bytes (__NEW_UTS_LEN)
R2NM_MAX_NAME_LEN = 64
