/*
 * kp_api.c - the api-key table: names and first flexible versions of every Kafka api
 * (apache/kafka clients/src/main/resources/common/message at 1eb76443, the commit the
 * ../shared/kafka-spec copies come from), and which responses carry broker addresses.
 */
#include "kp_api.h"

#include <stddef.h>

/* What the codec knows about one api key. */
struct kp_api_info {
    const char *name; /* message name without Request/Response; NULL for a gap */
    int8_t flexible;  /* first flexible version; -1 when none */
};

static const struct kp_api_info kp_api_table[] = {
    [0] = {"Produce", 9},
    [1] = {"Fetch", 12},
    [2] = {"ListOffsets", 6},
    [3] = {"Metadata", 9},
    [4] = {"LeaderAndIsr", 4},
    [5] = {"StopReplica", 2},
    [6] = {"UpdateMetadata", 6},
    [7] = {"ControlledShutdown", 3},
    [8] = {"OffsetCommit", 8},
    [9] = {"OffsetFetch", 6},
    [10] = {"FindCoordinator", 3},
    [11] = {"JoinGroup", 6},
    [12] = {"Heartbeat", 4},
    [13] = {"LeaveGroup", 4},
    [14] = {"SyncGroup", 4},
    [15] = {"DescribeGroups", 5},
    [16] = {"ListGroups", 3},
    [17] = {"SaslHandshake", -1},
    [18] = {"ApiVersions", 3},
    [19] = {"CreateTopics", 5},
    [20] = {"DeleteTopics", 4},
    [21] = {"DeleteRecords", 2},
    [22] = {"InitProducerId", 2},
    [23] = {"OffsetForLeaderEpoch", 4},
    [24] = {"AddPartitionsToTxn", 3},
    [25] = {"AddOffsetsToTxn", 3},
    [26] = {"EndTxn", 3},
    [27] = {"WriteTxnMarkers", 1},
    [28] = {"TxnOffsetCommit", 3},
    [29] = {"DescribeAcls", 2},
    [30] = {"CreateAcls", 2},
    [31] = {"DeleteAcls", 2},
    [32] = {"DescribeConfigs", 4},
    [33] = {"AlterConfigs", 2},
    [34] = {"AlterReplicaLogDirs", 2},
    [35] = {"DescribeLogDirs", 2},
    [36] = {"SaslAuthenticate", 2},
    [37] = {"CreatePartitions", 2},
    [38] = {"CreateDelegationToken", 2},
    [39] = {"RenewDelegationToken", 2},
    [40] = {"ExpireDelegationToken", 2},
    [41] = {"DescribeDelegationToken", 2},
    [42] = {"DeleteGroups", 2},
    [43] = {"ElectLeaders", 2},
    [44] = {"IncrementalAlterConfigs", 1},
    [45] = {"AlterPartitionReassignments", 0},
    [46] = {"ListPartitionReassignments", 0},
    [47] = {"OffsetDelete", -1},
    [48] = {"DescribeClientQuotas", 1},
    [49] = {"AlterClientQuotas", 1},
    [50] = {"DescribeUserScramCredentials", 0},
    [51] = {"AlterUserScramCredentials", 0},
    [52] = {"Vote", 0},
    [53] = {"BeginQuorumEpoch", 1},
    [54] = {"EndQuorumEpoch", 1},
    [55] = {"DescribeQuorum", 0},
    [56] = {"AlterPartition", 0},
    [57] = {"UpdateFeatures", 0},
    [58] = {"Envelope", 0},
    [59] = {"FetchSnapshot", 0},
    [60] = {"DescribeCluster", 0},
    [61] = {"DescribeProducers", 0},
    [62] = {"BrokerRegistration", 0},
    [63] = {"BrokerHeartbeat", 0},
    [64] = {"UnregisterBroker", 0},
    [65] = {"DescribeTransactions", 0},
    [66] = {"ListTransactions", 0},
    [67] = {"AllocateProducerIds", 0},
    [68] = {"ConsumerGroupHeartbeat", 0},
    [69] = {"ConsumerGroupDescribe", 0},
    [70] = {"ControllerRegistration", 0},
    [71] = {"GetTelemetrySubscriptions", 0},
    [72] = {"PushTelemetry", 0},
    [73] = {"AssignReplicasToDirs", 0},
    [74] = {"ListClientMetricsResources", 0},
    [75] = {"DescribeTopicPartitions", 0},
    [76] = {"ShareGroupHeartbeat", 0},
    [77] = {"ShareGroupDescribe", 0},
    [78] = {"ShareFetch", 0},
    [79] = {"ShareAcknowledge", 0},
    [80] = {"AddRaftVoter", 0},
    [81] = {"RemoveRaftVoter", 0},
    [82] = {"UpdateRaftVoter", 0},
    [83] = {"InitializeShareGroupState", 0},
    [84] = {"ReadShareGroupState", 0},
    [85] = {"WriteShareGroupState", 0},
    [86] = {"DeleteShareGroupState", 0},
    [87] = {"ReadShareGroupStateSummary", 0},
};

#define KP_API_COUNT (sizeof(kp_api_table) / sizeof(kp_api_table[0]))

/* The table entry for api_key, or NULL when the key is unknown. */
static const struct kp_api_info *
kp_api_info(int16_t api_key)
{
    if (api_key < 0 || (size_t)api_key >= KP_API_COUNT || !kp_api_table[api_key].name) {
        return NULL;
    }
    return &kp_api_table[api_key];
}

bool
kp_api_is_flexible(int16_t api_key, int16_t api_version)
{
    const struct kp_api_info *info = kp_api_info(api_key);

    return info && info->flexible >= 0 && api_version >= info->flexible;
}

int
kp_api_request_header_version(int16_t api_key, int16_t api_version)
{
    if (api_key == KP_API_CONTROLLED_SHUTDOWN && api_version == 0) {
        return 0; /* no client id: the one non-standard request header */
    }
    return kp_api_is_flexible(api_key, api_version) ? 2 : 1;
}

int
kp_api_response_header_version(int16_t api_key, int16_t api_version)
{
    if (api_key == KP_API_API_VERSIONS) {
        return 0; /* KIP-511: a client must read it before it knows the broker's versions */
    }
    return kp_api_is_flexible(api_key, api_version) ? 1 : 0;
}

bool
kp_api_response_needs_rewrite(int16_t api_key, int16_t api_version)
{
    switch (api_key) {
    case KP_API_METADATA:
    case KP_API_FIND_COORDINATOR:
    case KP_API_DESCRIBE_CLUSTER:
    case KP_API_API_VERSIONS:
    case KP_API_SHARE_FETCH:
    case KP_API_SHARE_ACKNOWLEDGE:
        return true;
    case KP_API_PRODUCE:
        return api_version >= 10; /* NodeEndpoints tagged field */
    case KP_API_FETCH:
        return api_version >= 16; /* NodeEndpoints tagged field */
    default:
        return false;
    }
}

int
kp_api_max_rewritable_version(int16_t api_key)
{
    switch (api_key) {
    case KP_API_PRODUCE:
        return 11;
    case KP_API_FETCH:
        return 17;
    case KP_API_METADATA:
        return 12;
    case KP_API_FIND_COORDINATOR:
        return 6;
    case KP_API_DESCRIBE_CLUSTER:
        return 1;
    case KP_API_SHARE_FETCH:
    case KP_API_SHARE_ACKNOWLEDGE:
        return 0;
    default:
        return -1;
    }
}

bool
kp_api_known(int16_t api_key)
{
    return kp_api_info(api_key) != NULL;
}

const char *
kp_api_name(int16_t api_key)
{
    const struct kp_api_info *info = kp_api_info(api_key);

    return info ? info->name : "Unknown";
}
