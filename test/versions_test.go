package test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/recordbatch"
	"github.com/chronik-stream/chronik/test/harness"
)

// rawConn speaks the Kafka protocol at exactly the version asked for.
type rawConn struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// do sends req at version and decodes the response at the same version.
func (rc *rawConn) do(req kmsg.Request, version int16) kmsg.Response {
	rc.t.Helper()
	rc.corr++
	req.SetVersion(version)
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(rc.corr))
	b = binary.BigEndian.AppendUint16(b, 8)
	b = append(b, "versions"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	rc.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatalf("%s v%d: write: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	var size [4]byte
	if _, err := io.ReadFull(rc.r, size[:]); err != nil {
		rc.t.Fatalf("%s v%d: no response: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(rc.r, body); err != nil {
		rc.t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != rc.corr {
		rc.t.Fatalf("%s v%d: correlation id %d, want %d", kmsg.NameForKey(req.Key()), version, corr, rc.corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		body = body[1:] // empty tagged fields of the response header
	}
	if err := resp.ReadFrom(body); err != nil {
		rc.t.Fatalf("%s v%d: decode response: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	return resp
}

// TestEveryAdvertisedVersion sends a meaningful request at every version of
// every API the broker advertises and checks the answer: it decodes at
// that version and carries the expected outcome. ApiVersions may only
// advertise versions covered here.
func TestEveryAdvertisedVersion(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	rc := dialRaw(t, n.Addr())

	av := rc.do(kmsg.NewPtrApiVersionsRequest(), 3).(*kmsg.ApiVersionsResponse)
	covered := map[int16]func(v int16){}
	topic := "versions"
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}}
	ct.TimeoutMillis = 10000
	if r := rc.do(ct, 4).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
	batch := recordbatch.Build(recordbatch.Batch{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []recordbatch.Record{{Timestamp: time.Now().UnixMilli(), Key: []byte("k"), Value: []byte("v")}}})

	covered[kmsg.ApiVersions.Int16()] = func(v int16) {
		r := rc.do(kmsg.NewPtrApiVersionsRequest(), v).(*kmsg.ApiVersionsResponse)
		if r.ErrorCode != 0 || len(r.ApiKeys) != len(av.ApiKeys) {
			t.Fatalf("ApiVersions v%d: %v, %d keys", v, kerr.ErrorForCode(r.ErrorCode), len(r.ApiKeys))
		}
	}
	covered[kmsg.Produce.Int16()] = func(v int16) {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: batch}}}}
		r := rc.do(req, v).(*kmsg.ProduceResponse)
		p := r.Topics[0].Partitions[0]
		if v < 3 {
			if p.ErrorCode != kerr.UnsupportedForMessageFormat.Code {
				t.Fatalf("Produce v%d: %v, want UNSUPPORTED_FOR_MESSAGE_FORMAT", v, kerr.ErrorForCode(p.ErrorCode))
			}
			return
		}
		if p.ErrorCode != 0 || p.BaseOffset < 0 {
			t.Fatalf("Produce v%d: %v offset %d", v, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
		}
	}
	covered[kmsg.Fetch.Int16()] = func(v int16) {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = -1, 10, 1, 1<<20, -1
		req.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{
			{Partition: 0, FetchOffset: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1, LogStartOffset: -1}}}}
		r := rc.do(req, v).(*kmsg.FetchResponse)
		p := r.Topics[0].Partitions[0]
		if r.ErrorCode != 0 || p.ErrorCode != 0 || len(p.RecordBatches) == 0 || p.HighWatermark < 1 {
			t.Fatalf("Fetch v%d: %v/%v, %d bytes, hw %d", v, kerr.ErrorForCode(r.ErrorCode), kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches), p.HighWatermark)
		}
	}
	covered[kmsg.ListOffsets.Int16()] = func(v int16) {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: -1, CurrentLeaderEpoch: -1}}}}
		r := rc.do(req, v).(*kmsg.ListOffsetsResponse)
		if p := r.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.Offset < 1 {
			t.Fatalf("ListOffsets v%d: %v offset %d", v, kerr.ErrorForCode(p.ErrorCode), p.Offset)
		}
	}
	covered[kmsg.Metadata.Int16()] = func(v int16) {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(topic)}}
		r := rc.do(req, v).(*kmsg.MetadataResponse)
		if len(r.Brokers) != 1 || len(r.Topics) != 1 || r.Topics[0].ErrorCode != 0 || len(r.Topics[0].Partitions) != 2 || r.Topics[0].Partitions[0].Leader != 1 {
			t.Fatalf("Metadata v%d: %+v", v, r)
		}
	}
	covered[kmsg.DescribeTopicPartitions.Int16()] = func(v int16) {
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		req.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: topic}}
		req.ResponsePartitionLimit = 10
		r := rc.do(req, v).(*kmsg.DescribeTopicPartitionsResponse)
		if len(r.Topics) != 1 || r.Topics[0].ErrorCode != 0 || len(r.Topics[0].Partitions) < 2 || r.Topics[0].Partitions[0].LeaderID != 1 || r.NextCursor != nil {
			t.Fatalf("DescribeTopicPartitions v%d: %+v", v, r)
		}
	}
	covered[kmsg.ElectLeaders.Int16()] = func(v int16) {
		// One node leads every partition it has: no election is needed.
		req := kmsg.NewPtrElectLeadersRequest()
		req.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: topic, Partitions: []int32{0}}}
		req.TimeoutMillis = 5000
		r := rc.do(req, v).(*kmsg.ElectLeadersResponse)
		want := kerr.ElectionNotNeeded.Code
		if v == 0 {
			want = 0
		}
		if r.ErrorCode != 0 || len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != want {
			t.Fatalf("ElectLeaders v%d: %+v", v, r)
		}
	}
	covered[kmsg.FindCoordinator.Int16()] = func(v int16) {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = "g-versions"
		req.CoordinatorKeys = []string{"g-versions"}
		r := rc.do(req, v).(*kmsg.FindCoordinatorResponse)
		nodeID, ec := r.NodeID, r.ErrorCode
		if v >= 4 {
			nodeID, ec = r.Coordinators[0].NodeID, r.Coordinators[0].ErrorCode
		}
		if ec != 0 || nodeID != 1 {
			t.Fatalf("FindCoordinator v%d: %v node %d", v, kerr.ErrorForCode(ec), nodeID)
		}
	}
	covered[kmsg.CreateTopics.Int16()] = func(v int16) {
		req := kmsg.NewPtrCreateTopicsRequest()
		name := fmt.Sprintf("created-v%d", v)
		req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: name, NumPartitions: 1, ReplicationFactor: 1}}
		req.TimeoutMillis = 10000
		r := rc.do(req, v).(*kmsg.CreateTopicsResponse)
		if r.Topics[0].ErrorCode != 0 {
			t.Fatalf("CreateTopics v%d: %v", v, kerr.ErrorForCode(r.Topics[0].ErrorCode))
		}
	}
	covered[kmsg.DeleteTopics.Int16()] = func(v int16) {
		name := fmt.Sprintf("created-v%d", v)
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TopicNames = []string{name}
		req.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: &name}}
		req.TimeoutMillis = 10000
		r := rc.do(req, v).(*kmsg.DeleteTopicsResponse)
		if r.Topics[0].ErrorCode != 0 {
			t.Fatalf("DeleteTopics v%d: %v", v, kerr.ErrorForCode(r.Topics[0].ErrorCode))
		}
	}
	covered[kmsg.CreatePartitions.Int16()] = func(v int16) {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: topic, Count: int32(3 + v)}}
		req.TimeoutMillis = 10000
		r := rc.do(req, v).(*kmsg.CreatePartitionsResponse)
		if r.Topics[0].ErrorCode != 0 {
			t.Fatalf("CreatePartitions v%d: %v", v, kerr.ErrorForCode(r.Topics[0].ErrorCode))
		}
	}
	covered[kmsg.DeleteRecords.Int16()] = func(v int16) {
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: topic, Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 1, Offset: 0}}}}
		req.TimeoutMillis = 10000
		r := rc.do(req, v).(*kmsg.DeleteRecordsResponse)
		if p := r.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LowWatermark != 0 {
			t.Fatalf("DeleteRecords v%d: %v low %d", v, kerr.ErrorForCode(p.ErrorCode), p.LowWatermark)
		}
	}
	covered[kmsg.InitProducerID.Int16()] = func(v int16) {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.ProducerID, req.ProducerEpoch = -1, -1
		r := rc.do(req, v).(*kmsg.InitProducerIDResponse)
		if r.ErrorCode != 0 || r.ProducerID < 0 {
			t.Fatalf("InitProducerId v%d: %v id %d", v, kerr.ErrorForCode(r.ErrorCode), r.ProducerID)
		}
	}
	covered[kmsg.OffsetForLeaderEpoch.Int16()] = func(v int16) {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = -1
		req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, LeaderEpoch: 1, CurrentLeaderEpoch: -1}}}}
		r := rc.do(req, v).(*kmsg.OffsetForLeaderEpochResponse)
		if p := r.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.EndOffset < 1 {
			t.Fatalf("OffsetForLeaderEpoch v%d: %v end %d", v, kerr.ErrorForCode(p.ErrorCode), p.EndOffset)
		}
	}
	covered[kmsg.DescribeConfigs.Int16()] = func(v int16) {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Resources = []kmsg.DescribeConfigsRequestResource{
			{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic},
			{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1"},
		}
		r := rc.do(req, v).(*kmsg.DescribeConfigsResponse)
		for _, res := range r.Resources {
			if res.ErrorCode != 0 || len(res.Configs) == 0 {
				t.Fatalf("DescribeConfigs v%d: %v, %d configs", v, kerr.ErrorForCode(res.ErrorCode), len(res.Configs))
			}
		}
	}
	covered[kmsg.AlterConfigs.Int16()] = func(v int16) {
		req := kmsg.NewPtrAlterConfigsRequest()
		req.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic,
			Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("86400000")}}}}
		r := rc.do(req, v).(*kmsg.AlterConfigsResponse)
		if r.Resources[0].ErrorCode != 0 {
			t.Fatalf("AlterConfigs v%d: %v", v, kerr.ErrorForCode(r.Resources[0].ErrorCode))
		}
	}
	covered[kmsg.IncrementalAlterConfigs.Int16()] = func(v int16) {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic,
			Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "segment.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("3600000")}}}}
		r := rc.do(req, v).(*kmsg.IncrementalAlterConfigsResponse)
		if r.Resources[0].ErrorCode != 0 {
			t.Fatalf("IncrementalAlterConfigs v%d: %v", v, kerr.ErrorForCode(r.Resources[0].ErrorCode))
		}
	}
	covered[kmsg.DescribeCluster.Int16()] = func(v int16) {
		r := rc.do(kmsg.NewPtrDescribeClusterRequest(), v).(*kmsg.DescribeClusterResponse)
		if r.ErrorCode != 0 || len(r.Brokers) != 1 || r.ClusterID == "" {
			t.Fatalf("DescribeCluster v%d: %+v", v, r)
		}
	}
	covered[kmsg.AlterPartitionAssignments.Int16()] = func(v int16) {
		// On one node: to the replica it has (nothing moves), then a
		// cancel with nothing in progress.
		for _, c := range []struct {
			replicas []int32
			want     int16
		}{{[]int32{1}, 0}, {nil, kerr.NoReassignmentInProgress.Code}} {
			req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
			req.AllowReplicationFactorChange = false
			req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: topic, Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: c.replicas}}}}
			r := rc.do(req, v).(*kmsg.AlterPartitionAssignmentsResponse)
			if r.ErrorCode != 0 || len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != c.want {
				t.Fatalf("AlterPartitionAssignments v%d to %v: %+v", v, c.replicas, r)
			}
		}
	}
	covered[kmsg.ListPartitionReassignments.Int16()] = func(v int16) {
		r := rc.do(kmsg.NewPtrListPartitionReassignmentsRequest(), v).(*kmsg.ListPartitionReassignmentsResponse)
		if r.ErrorCode != 0 || len(r.Topics) != 0 {
			t.Fatalf("ListPartitionReassignments v%d: %+v", v, r)
		}
	}
	covered[kmsg.DescribeLogDirs.Int16()] = describeLogDirsVersion(t, rc, n.DataDir, topic)
	covered[kmsg.DescribeProducers.Int16()] = describeProducersVersion(t, rc, topic)
	groupAPIs(t, rc, topic, covered)

	for _, k := range av.ApiKeys {
		f := covered[k.ApiKey]
		if f == nil {
			t.Errorf("%s is advertised but not covered by this test", kmsg.NameForKey(k.ApiKey))
			continue
		}
		for v := k.MinVersion; v <= k.MaxVersion; v++ {
			f(v)
		}
	}
}

// groupAPIs covers the group coordinator's APIs at every version: one
// member joins (with the member id handshake from v4), syncs, heartbeats,
// commits, fetches, is described and listed, and leaves; then the group is
// deleted.
func groupAPIs(t *testing.T, rc *rawConn, topic string, covered map[int16]func(int16)) {
	// Each JoinGroup version runs a whole lifecycle on its own group, and the
	// other APIs reuse the group of the version being checked.
	type member struct {
		group, id string
		gen       int32
	}
	join := func(group string, v int16) member {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = group, 10000, 10000, "consumer"
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = []string{topic}
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
		// As a client does: find the coordinator (this creates
		// __consumer_offsets on first use), and retry while it loads.
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey = group
		if r := rc.do(fc, 3).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 0 {
			t.Fatalf("FindCoordinator for %s: %v", group, kerr.ErrorForCode(r.ErrorCode))
		}
		var r *kmsg.JoinGroupResponse
		harness.WaitFor(t, "the group coordinator to load", 10*time.Second, func() error {
			r = rc.do(req, v).(*kmsg.JoinGroupResponse)
			if r.ErrorCode == kerr.CoordinatorLoadInProgress.Code || r.ErrorCode == kerr.NotCoordinator.Code {
				return kerr.ErrorForCode(r.ErrorCode)
			}
			return nil
		})
		if r.ErrorCode == kerr.MemberIDRequired.Code {
			req.MemberID = r.MemberID
			r = rc.do(req, v).(*kmsg.JoinGroupResponse)
		}
		if r.ErrorCode != 0 || r.Generation < 1 {
			t.Fatalf("JoinGroup v%d: %v gen %d", v, kerr.ErrorForCode(r.ErrorCode), r.Generation)
		}
		sreq := kmsg.NewPtrSyncGroupRequest()
		sreq.Group, sreq.Generation, sreq.MemberID = group, r.Generation, r.MemberID
		sreq.ProtocolType, sreq.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
		sreq.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: r.MemberID, MemberAssignment: []byte{0, 0, 0, 0, 0, 0, 0, 0}}}
		sv := min(v, 5)
		if s := rc.do(sreq, sv).(*kmsg.SyncGroupResponse); s.ErrorCode != 0 {
			t.Fatalf("SyncGroup v%d: %v", sv, kerr.ErrorForCode(s.ErrorCode))
		}
		return member{group, r.MemberID, r.Generation}
	}
	covered[kmsg.JoinGroup.Int16()] = func(v int16) { join(fmt.Sprintf("join-v%d", v), v) }
	covered[kmsg.SyncGroup.Int16()] = func(v int16) { join(fmt.Sprintf("sync-v%d", v), min(v+4, 9)) }
	covered[kmsg.Heartbeat.Int16()] = func(v int16) {
		m := join(fmt.Sprintf("hb-v%d", v), 5)
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.Generation, req.MemberID = m.group, m.gen, m.id
		if r := rc.do(req, v).(*kmsg.HeartbeatResponse); r.ErrorCode != 0 {
			t.Fatalf("Heartbeat v%d: %v", v, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	leave := func(m member, v int16) {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group, req.MemberID = m.group, m.id
		req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: m.id}}
		r := rc.do(req, v).(*kmsg.LeaveGroupResponse)
		if r.ErrorCode != 0 {
			t.Fatalf("LeaveGroup v%d: %v", v, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	commit := func(m member, v int16, offset int64) {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation, req.MemberID, req.RetentionTimeMillis = m.group, m.gen, m.id, -1
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
		r := rc.do(req, v).(*kmsg.OffsetCommitResponse)
		if ec := r.Topics[0].Partitions[0].ErrorCode; ec != 0 {
			t.Fatalf("OffsetCommit v%d: %v", v, kerr.ErrorForCode(ec))
		}
	}
	covered[kmsg.OffsetCommit.Int16()] = func(v int16) {
		m := join(fmt.Sprintf("oc-v%d", v), 5)
		if v == 0 {
			// v0 has no generation or member: only an empty group takes it.
			leave(m, 4)
		}
		commit(m, v, int64(v))
	}
	covered[kmsg.OffsetFetch.Int16()] = func(v int16) {
		m := join(fmt.Sprintf("of-v%d", v), 5)
		commit(m, 8, 42)
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = m.group
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{0}}}
		req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: m.group, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}}}
		r := rc.do(req, v).(*kmsg.OffsetFetchResponse)
		off := int64(-1)
		if v >= 8 {
			off = r.Groups[0].Topics[0].Partitions[0].Offset
		} else {
			off = r.Topics[0].Partitions[0].Offset
		}
		if off != 42 {
			t.Fatalf("OffsetFetch v%d: offset %d, want 42", v, off)
		}
	}
	covered[kmsg.DescribeGroups.Int16()] = func(v int16) {
		m := join(fmt.Sprintf("dg-v%d", v), 5)
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{m.group}
		r := rc.do(req, v).(*kmsg.DescribeGroupsResponse)
		if g := r.Groups[0]; g.ErrorCode != 0 || g.State != "Stable" || len(g.Members) != 1 {
			t.Fatalf("DescribeGroups v%d: %+v", v, g)
		}
	}
	covered[kmsg.ListGroups.Int16()] = func(v int16) {
		m := join(fmt.Sprintf("lg-v%d", v), 5)
		r := rc.do(kmsg.NewPtrListGroupsRequest(), v).(*kmsg.ListGroupsResponse)
		found := false
		for _, g := range r.Groups {
			found = found || g.Group == m.group
		}
		if r.ErrorCode != 0 || !found {
			t.Fatalf("ListGroups v%d: %v, group listed: %v", v, kerr.ErrorForCode(r.ErrorCode), found)
		}
	}
	covered[kmsg.LeaveGroup.Int16()] = func(v int16) { leave(join(fmt.Sprintf("lv-v%d", v), 5), v) }
	covered[kmsg.DeleteGroups.Int16()] = func(v int16) {
		m := join(fmt.Sprintf("del-v%d", v), 5)
		leave(m, 4)
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Groups = []string{m.group}
		if r := rc.do(req, v).(*kmsg.DeleteGroupsResponse); r.Groups[0].ErrorCode != 0 {
			t.Fatalf("DeleteGroups v%d: %v", v, kerr.ErrorForCode(r.Groups[0].ErrorCode))
		}
	}
	covered[kmsg.OffsetDelete.Int16()] = func(v int16) {
		m := join(fmt.Sprintf("od-v%d", v), 5)
		commit(m, 8, 7)
		leave(m, 4)
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = m.group
		req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
		r := rc.do(req, v).(*kmsg.OffsetDeleteResponse)
		if r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("OffsetDelete v%d: %v", v, kerr.ErrorForCode(r.ErrorCode))
		}
	}
}

// TestListOffsetsSpecialTimestamps checks the special timestamps of
// ListOffsets at the versions that introduced them: the record with the
// largest timestamp (v7), the earliest local offset (v8) and the latest
// tiered one (v9, none without tiered storage); asked of an older version
// they are invalid.
func TestListOffsetsSpecialTimestamps(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	cl := franzClient(t, n.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "ts", 1, 1)
	base := time.Now().Add(-time.Hour).UnixMilli()
	// Two records share the largest timestamp: the first is the answer.
	stamps := []int64{base, base + 300, base + 100, base + 300, base + 200}
	ctx := harness.Context(t, 30*time.Second)
	for i, ts := range stamps {
		r := &kgo.Record{Topic: "ts", Value: []byte(strconv.Itoa(i)), Timestamp: time.UnixMilli(ts)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rc := dialRaw(t, n.Addr())
	list := func(v int16, ts int64) kmsg.ListOffsetsResponseTopicPartition {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "ts", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: ts, CurrentLeaderEpoch: -1}}}}
		return rc.do(req, v).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	}
	for _, c := range []struct {
		v       int16
		ts      int64
		offset  int64
		stamp   int64
		errCode int16
	}{
		{6, -3, -1, -1, kerr.InvalidRequest.Code},
		{7, -3, 1, base + 300, 0},
		{7, -4, -1, -1, kerr.InvalidRequest.Code},
		{8, -4, 0, -1, 0},
		{8, -5, -1, -1, kerr.InvalidRequest.Code},
		{9, -5, -1, -1, 0},
		{9, -6, -1, -1, kerr.InvalidRequest.Code},
		{9, base + 50, 1, base + 300, 0},
	} {
		p := list(c.v, c.ts)
		if p.ErrorCode != c.errCode || p.Offset != c.offset || p.Timestamp != c.stamp {
			t.Errorf("ListOffsets v%d timestamp %d: %v offset %d timestamp %d, want %v %d %d", c.v, c.ts,
				kerr.ErrorForCode(p.ErrorCode), p.Offset, p.Timestamp, kerr.ErrorForCode(c.errCode), c.offset, c.stamp)
		}
	}
}

// TestDescribeTopicPartitionsPages checks the paging of
// DescribeTopicPartitions: every partition of every topic once, in order,
// at most the asked number per answer, continued from each next cursor;
// unknown topics and a cursor outside the list get errors.
func TestDescribeTopicPartitionsPages(t *testing.T) {
	n := harness.NewNode(t, harness.NodeOptions{})
	n.Start()
	cl := franzClient(t, n.Addr())
	createTopic(t, cl, "pages-a", 3, 1)
	createTopic(t, cl, "pages-b", 2, 1)
	createTopic(t, cl, "pages-c", 4, 1)
	rc := dialRaw(t, n.Addr())
	describe := func(topics []string, cursor *kmsg.DescribeTopicPartitionsRequestCursor) *kmsg.DescribeTopicPartitionsResponse {
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		for _, name := range topics {
			req.Topics = append(req.Topics, kmsg.DescribeTopicPartitionsRequestTopic{Topic: name})
		}
		req.ResponsePartitionLimit = 2
		req.Cursor = cursor
		return rc.do(req, 0).(*kmsg.DescribeTopicPartitionsResponse)
	}
	var seen []string
	var cursor *kmsg.DescribeTopicPartitionsRequestCursor
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatalf("still paging after 10 answers: %v", seen)
		}
		r := describe([]string{"pages-c", "pages-a", "pages-b", "pages-none"}, cursor)
		n := 0
		for _, dt := range r.Topics {
			if *dt.Topic == "pages-none" {
				if dt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
					t.Fatalf("unknown topic: %v", kerr.ErrorForCode(dt.ErrorCode))
				}
				continue
			}
			for _, p := range dt.Partitions {
				seen = append(seen, fmt.Sprintf("%s/%d", *dt.Topic, p.Partition))
				n++
			}
		}
		if n > 2 {
			t.Fatalf("an answer held %d partitions, limit 2", n)
		}
		if r.NextCursor == nil {
			break
		}
		cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: r.NextCursor.Topic, Partition: r.NextCursor.Partition}
	}
	want := "[pages-a/0 pages-a/1 pages-a/2 pages-b/0 pages-b/1 pages-c/0 pages-c/1 pages-c/2 pages-c/3]"
	if fmt.Sprint(seen) != want {
		t.Fatalf("paged through %v, want %s", seen, want)
	}
	r := describe([]string{"pages-a"}, &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "pages-b"})
	if len(r.Topics) != 1 || r.Topics[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("a cursor outside the topic list: %+v", r.Topics)
	}
	// No topics: every topic, internal ones included.
	all := describe(nil, nil)
	if len(all.Topics) == 0 || *all.Topics[0].Topic != "pages-a" || all.NextCursor == nil {
		t.Fatalf("every topic, first page: %+v", all)
	}
}
