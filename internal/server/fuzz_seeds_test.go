package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/broker"
	"github.com/chronik-stream/chronik/internal/recordbatch"
)

type fuzzSeed struct {
	key, version int16
	body         []byte
}

// Topic names the seeds use besides fuzzTopic.
const (
	seedMissing = "fuzz-missing" // never made
	seedCreated = "fuzz-created" // made by a CreateTopics seed
	seedOffsets = "__consumer_offsets"
	seedCatalog = "__cluster_metadata" // reserved, and never a topic
	seedInvalid = "bad/name"           // not a legal topic name
	seedGroup   = "fuzz-group"
)

// seedLarge is the length of the seeds' large arrays.
const seedLarge = 300

// fuzzSeeds is a valid request of every version of every API the broker
// advertises, in the first shape seedRequests gives for that API, and in
// each of the others at the lowest and highest version. (Every shape at
// every version doubles the seeds, and with them the fuzzer's baseline
// run, for little: the versions differ in their encoding, which the first
// shape covers, more than in what the handlers do with the fields.)
func fuzzSeeds(tb testing.TB) []fuzzSeed {
	build := seedRequests()
	var seeds []fuzzSeed
	for _, k := range broker.APIVersions() {
		shapes := build[k.ApiKey]
		if len(shapes) == 0 {
			tb.Fatalf("%s is advertised but has no fuzz seeds", kmsg.NameForKey(k.ApiKey))
		}
		for v := k.MinVersion; v <= k.MaxVersion; v++ {
			for i, shape := range shapes {
				if i > 0 && v != k.MinVersion && v != k.MaxVersion {
					continue
				}
				req := shape(v)
				req.SetVersion(v)
				seeds = append(seeds, fuzzSeed{key: k.ApiKey, version: v, body: req.AppendTo(nil)})
			}
		}
	}
	return seeds
}

func seedBatch(producerID int64, epoch int16, seq int32, n int) []byte {
	b := recordbatch.Batch{ProducerID: producerID, ProducerEpoch: epoch, BaseSequence: seq}
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := 0; i < n; i++ {
		b.Records = append(b.Records, recordbatch.Record{Timestamp: ts + int64(i), Key: []byte(fmt.Sprint("k", i)), Value: []byte("seed value")})
	}
	return recordbatch.Build(b)
}

// seedRequests gives, by API key, the shapes of request the seeds take at
// every version; fields a version lacks are not encoded.
func seedRequests() map[int16][]func(v int16) kmsg.Request {
	s := map[int16][]func(v int16) kmsg.Request{}
	add := func(key kmsg.Key, shapes ...func(v int16) kmsg.Request) { s[key.Int16()] = shapes }

	ok := seedBatch(-1, -1, -1, 3)
	corrupt := append([]byte(nil), ok...)
	corrupt[len(corrupt)-1] ^= 0xff // the CRC no longer matches
	produce := func(acks int16, topics ...kmsg.ProduceRequestTopic) kmsg.Request {
		r := kmsg.NewPtrProduceRequest()
		r.Acks, r.TimeoutMillis, r.Topics = acks, 1000, topics
		return r
	}
	ptopic := func(name string, batch []byte, parts ...int32) kmsg.ProduceRequestTopic {
		t := kmsg.ProduceRequestTopic{Topic: name}
		for _, p := range parts {
			t.Partitions = append(t.Partitions, kmsg.ProduceRequestTopicPartition{Partition: p, Records: batch})
		}
		return t
	}
	many := make([]int32, seedLarge)
	for i := range many {
		many[i] = int32(i) - 10
	}
	add(kmsg.Produce,
		func(int16) kmsg.Request { return produce(-1, ptopic(fuzzTopic, ok, 0)) },
		func(int16) kmsg.Request {
			return produce(1, ptopic(fuzzTopic, ok, 1, -1, 2), ptopic(seedMissing, ok, 0), ptopic(seedOffsets, ok, 0), ptopic(seedCatalog, ok, 0), ptopic(seedInvalid, ok, 0))
		},
		func(int16) kmsg.Request { return produce(0, ptopic(fuzzTopic, ok, 1)) },
		func(int16) kmsg.Request {
			return produce(-1, ptopic(fuzzTopic, corrupt, 0), ptopic(fuzzTopic, nil, 1), ptopic(fuzzTopic, []byte{}, 1))
		},
		func(int16) kmsg.Request { return produce(-1, ptopic(fuzzTopic, seedBatch(1000, 0, 5, 2), 0)) }, // unknown idempotent producer
		func(int16) kmsg.Request { return produce(2, ptopic(fuzzTopic, ok, 0)) },                        // invalid acks
		func(int16) kmsg.Request { return produce(-1, ptopic(fuzzTopic, ok, many...)) },
		func(int16) kmsg.Request {
			r := produce(-1, ptopic(fuzzTopic, ok, 0)).(*kmsg.ProduceRequest)
			r.TransactionID = kmsg.StringPtr("fuzz-txn")
			return r
		},
	)

	fetch := func(topics ...kmsg.FetchRequestTopic) kmsg.Request {
		r := kmsg.NewPtrFetchRequest()
		r.ReplicaID, r.MaxWaitMillis, r.MinBytes, r.MaxBytes, r.SessionEpoch = -1, 10, 1, 1<<20, -1
		r.Topics = topics
		return r
	}
	ftopic := func(name string, offset int64, parts ...int32) kmsg.FetchRequestTopic {
		t := kmsg.FetchRequestTopic{Topic: name}
		for _, p := range parts {
			t.Partitions = append(t.Partitions, kmsg.FetchRequestTopicPartition{Partition: p, FetchOffset: offset, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1, LogStartOffset: -1})
		}
		return t
	}
	add(kmsg.Fetch,
		func(int16) kmsg.Request { return fetch(ftopic(fuzzTopic, 0, 0, 1)) },
		func(int16) kmsg.Request {
			return fetch(ftopic(fuzzTopic, -1, 0), ftopic(fuzzTopic, 1<<40, 1), ftopic(fuzzTopic, 0, -1, 7), ftopic(seedMissing, 0, 0), ftopic(seedOffsets, 0, 0), ftopic(seedCatalog, 0, 0))
		},
		func(int16) kmsg.Request {
			r := fetch(ftopic(fuzzTopic, 0, 0)).(*kmsg.FetchRequest)
			r.MaxBytes, r.Topics[0].Partitions[0].PartitionMaxBytes = 1, 0 // KIP-74: one batch anyway
			r.Topics[0].Partitions[0].CurrentLeaderEpoch = 1 << 20
			r.IsolationLevel = 1
			return r
		},
		func(int16) kmsg.Request {
			r := fetch(ftopic(fuzzTopic, 0, 0)).(*kmsg.FetchRequest)
			r.SessionID, r.SessionEpoch = 7, 1 // an unknown session
			r.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: fuzzTopic, Partitions: []int32{0}}}
			return r
		},
		func(int16) kmsg.Request { return fetch(ftopic(fuzzTopic, 0, many...)) },
		func(int16) kmsg.Request { return fetch() },
	)

	listOffsets := func(topic string, ts int64, parts ...int32) kmsg.Request {
		r := kmsg.NewPtrListOffsetsRequest()
		r.ReplicaID = -1
		t := kmsg.ListOffsetsRequestTopic{Topic: topic}
		for _, p := range parts {
			t.Partitions = append(t.Partitions, kmsg.ListOffsetsRequestTopicPartition{Partition: p, Timestamp: ts, CurrentLeaderEpoch: -1, MaxNumOffsets: 1})
		}
		r.Topics = []kmsg.ListOffsetsRequestTopic{t}
		return r
	}
	add(kmsg.ListOffsets,
		func(int16) kmsg.Request { return listOffsets(fuzzTopic, -1, 0, 1) },
		func(int16) kmsg.Request { return listOffsets(fuzzTopic, -2, 0, -1, 9) },
		func(int16) kmsg.Request { return listOffsets(fuzzTopic, 0, 0) },
		func(int16) kmsg.Request { return listOffsets(fuzzTopic, -3, 0) },    // max timestamp (v7+)
		func(int16) kmsg.Request { return listOffsets(fuzzTopic, -5, 0, 1) }, // latest tiered (v9+)
		func(int16) kmsg.Request { return listOffsets(fuzzTopic, -7, 0) },    // no such special timestamp
		func(int16) kmsg.Request {
			r := listOffsets(seedMissing, -1, 0).(*kmsg.ListOffsetsRequest)
			r.Topics = append(r.Topics, listOffsets(seedOffsets, -1, 0).(*kmsg.ListOffsetsRequest).Topics...)
			r.Topics = append(r.Topics, listOffsets(fuzzTopic, time.Now().UnixMilli(), many...).(*kmsg.ListOffsetsRequest).Topics...)
			return r
		},
	)

	metadata := func(auto bool, names ...string) kmsg.Request {
		r := kmsg.NewPtrMetadataRequest()
		r.AllowAutoTopicCreation = auto
		r.IncludeTopicAuthorizedOperations = true
		for _, n := range names {
			r.Topics = append(r.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr(n)})
		}
		if names != nil && r.Topics == nil {
			r.Topics = []kmsg.MetadataRequestTopic{}
		}
		return r
	}
	add(kmsg.Metadata,
		func(int16) kmsg.Request { return metadata(false) }, // every topic
		func(int16) kmsg.Request { return metadata(false, []string{}...) },
		func(int16) kmsg.Request { return metadata(true, fuzzTopic, "fuzz-auto") },
		func(int16) kmsg.Request {
			return metadata(true, seedOffsets, seedCatalog, seedInvalid, "", ".", "fuzz.topic", seedMissing)
		},
		func(int16) kmsg.Request {
			r := metadata(false, fuzzTopic).(*kmsg.MetadataRequest)
			r.Topics = append(r.Topics, kmsg.MetadataRequestTopic{TopicID: [16]byte{1, 2, 3}}) // an unknown id, no name
			return r
		},
	)

	add(kmsg.FindCoordinator,
		func(int16) kmsg.Request {
			r := kmsg.NewPtrFindCoordinatorRequest()
			r.CoordinatorKey, r.CoordinatorKeys = seedGroup, []string{seedGroup, "", "other"}
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrFindCoordinatorRequest()
			r.CoordinatorKey, r.CoordinatorType = "fuzz-txn", 1
			r.CoordinatorKeys = []string{"fuzz-txn"}
			return r
		},
	)

	consumerMeta := func() []byte {
		m := kmsg.NewConsumerMemberMetadata()
		m.Topics = []string{fuzzTopic}
		return m.AppendTo(nil)
	}()
	join := func(member string, inst *string) kmsg.Request {
		r := kmsg.NewPtrJoinGroupRequest()
		r.Group, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis, r.ProtocolType = seedGroup, 100, 100, "consumer"
		r.MemberID, r.InstanceID = member, inst
		r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta}, {Name: "roundrobin", Metadata: consumerMeta}}
		r.Reason = kmsg.StringPtr("fuzz")
		return r
	}
	add(kmsg.JoinGroup,
		func(int16) kmsg.Request { return join("", nil) },
		func(int16) kmsg.Request { return join("", kmsg.StringPtr("fuzz-static")) },
		func(int16) kmsg.Request { return join("fuzz-unknown-member", nil) },
		func(int16) kmsg.Request {
			r := join("", nil).(*kmsg.JoinGroupRequest)
			r.Group, r.SessionTimeoutMillis, r.Protocols = "", -1, nil // no group, no protocols
			return r
		},
	)
	add(kmsg.SyncGroup,
		func(int16) kmsg.Request {
			r := kmsg.NewPtrSyncGroupRequest()
			r.Group, r.Generation, r.MemberID = seedGroup, 1, "fuzz-unknown-member"
			r.ProtocolType, r.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
			r.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: "fuzz-unknown-member", MemberAssignment: []byte{0, 0, 0, 0, 0, 0, 0, 0}}}
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrSyncGroupRequest()
			r.Group, r.Generation, r.InstanceID = "", -1, kmsg.StringPtr("fuzz-static")
			return r
		},
	)
	add(kmsg.Heartbeat, func(int16) kmsg.Request {
		r := kmsg.NewPtrHeartbeatRequest()
		r.Group, r.Generation, r.MemberID, r.InstanceID = seedGroup, 1, "fuzz-unknown-member", kmsg.StringPtr("fuzz-static")
		return r
	})
	add(kmsg.LeaveGroup,
		func(int16) kmsg.Request {
			r := kmsg.NewPtrLeaveGroupRequest()
			r.Group, r.MemberID = seedGroup, "fuzz-unknown-member"
			r.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "fuzz-unknown-member"}, {InstanceID: kmsg.StringPtr("fuzz-static")}}
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrLeaveGroupRequest()
			r.Group, r.Members = "", []kmsg.LeaveGroupRequestMember{}
			return r
		},
	)
	commit := func(group string, topics ...kmsg.OffsetCommitRequestTopic) kmsg.Request {
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Group, r.Generation, r.MemberID, r.RetentionTimeMillis = group, -1, "", -1
		r.Topics = topics
		return r
	}
	ctopic := func(name string, offset int64, parts ...int32) kmsg.OffsetCommitRequestTopic {
		t := kmsg.OffsetCommitRequestTopic{Topic: name}
		for _, p := range parts {
			t.Partitions = append(t.Partitions, kmsg.OffsetCommitRequestTopicPartition{Partition: p, Offset: offset, LeaderEpoch: -1, Metadata: kmsg.StringPtr("m")})
		}
		return t
	}
	add(kmsg.OffsetCommit,
		func(int16) kmsg.Request { return commit(seedGroup, ctopic(fuzzTopic, 1, 0, 1)) },
		func(int16) kmsg.Request {
			return commit(seedGroup, ctopic(fuzzTopic, -5, -1, 9), ctopic(seedMissing, 0, 0), ctopic(seedOffsets, 0, 0))
		},
		func(int16) kmsg.Request {
			r := commit("fuzz-member-group", ctopic(fuzzTopic, 1, 0)).(*kmsg.OffsetCommitRequest)
			r.Generation, r.MemberID, r.InstanceID = 3, "fuzz-unknown-member", kmsg.StringPtr("fuzz-static")
			return r
		},
		func(int16) kmsg.Request { return commit(seedGroup, ctopic(fuzzTopic, 1, many...)) },
		func(int16) kmsg.Request { return commit("", ctopic(fuzzTopic, 1, 0)) },
	)
	offsetFetch := func(group string, topics []kmsg.OffsetFetchRequestTopic) kmsg.Request {
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Group, r.Topics = group, topics
		g := kmsg.OffsetFetchRequestGroup{Group: group}
		for _, t := range topics {
			g.Topics = append(g.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
		if topics == nil {
			g.Topics = nil
		}
		r.Groups = []kmsg.OffsetFetchRequestGroup{g}
		return r
	}
	add(kmsg.OffsetFetch,
		func(int16) kmsg.Request {
			return offsetFetch(seedGroup, []kmsg.OffsetFetchRequestTopic{{Topic: fuzzTopic, Partitions: []int32{0, 1}}})
		},
		func(int16) kmsg.Request { return offsetFetch(seedGroup, nil) }, // every topic
		func(int16) kmsg.Request {
			return offsetFetch("fuzz-nobody", []kmsg.OffsetFetchRequestTopic{{Topic: fuzzTopic, Partitions: []int32{-1, 7}}, {Topic: seedMissing, Partitions: []int32{0}}, {Topic: seedOffsets, Partitions: []int32{0}}})
		},
		func(int16) kmsg.Request {
			r := offsetFetch(seedGroup, []kmsg.OffsetFetchRequestTopic{{Topic: fuzzTopic, Partitions: many}}).(*kmsg.OffsetFetchRequest)
			r.RequireStable = true
			r.Groups = append(r.Groups, kmsg.OffsetFetchRequestGroup{Group: ""}, kmsg.OffsetFetchRequestGroup{Group: "fuzz-nobody", Topics: []kmsg.OffsetFetchRequestGroupTopic{}})
			return r
		},
	)
	add(kmsg.DescribeGroups,
		func(int16) kmsg.Request {
			r := kmsg.NewPtrDescribeGroupsRequest()
			r.Groups, r.IncludeAuthorizedOperations = []string{seedGroup, "fuzz-nobody", ""}, true
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrDescribeGroupsRequest()
			r.Groups = []string{}
			return r
		},
	)
	add(kmsg.ListGroups,
		func(int16) kmsg.Request { return kmsg.NewPtrListGroupsRequest() },
		func(int16) kmsg.Request {
			r := kmsg.NewPtrListGroupsRequest()
			r.StatesFilter = []string{"Stable", "Empty", "NoSuchState"}
			return r
		},
	)
	add(kmsg.DeleteGroups, func(int16) kmsg.Request {
		r := kmsg.NewPtrDeleteGroupsRequest()
		r.Groups = []string{"fuzz-member-group", "fuzz-nobody", "", seedGroup}
		return r
	})
	add(kmsg.OffsetDelete,
		func(int16) kmsg.Request {
			r := kmsg.NewPtrOffsetDeleteRequest()
			r.Group = seedGroup
			r.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: fuzzTopic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}, {Partition: -1}}}, {Topic: seedMissing}}
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrOffsetDeleteRequest()
			r.Group = ""
			return r
		},
	)

	add(kmsg.ApiVersions, func(int16) kmsg.Request {
		r := kmsg.NewPtrApiVersionsRequest()
		r.ClientSoftwareName, r.ClientSoftwareVersion = "chronik-fuzz", "1.0"
		return r
	})

	createTopics := func(validate bool, topics ...kmsg.CreateTopicsRequestTopic) kmsg.Request {
		r := kmsg.NewPtrCreateTopicsRequest()
		r.TimeoutMillis, r.ValidateOnly, r.Topics = 1000, validate, topics
		return r
	}
	newTopic := func(name string, parts int32, rf int16, configs ...string) kmsg.CreateTopicsRequestTopic {
		t := kmsg.CreateTopicsRequestTopic{Topic: name, NumPartitions: parts, ReplicationFactor: rf}
		for i := 0; i+1 < len(configs); i += 2 {
			t.Configs = append(t.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: configs[i], Value: kmsg.StringPtr(configs[i+1])})
		}
		return t
	}
	add(kmsg.CreateTopics,
		func(v int16) kmsg.Request {
			return createTopics(false, newTopic(fmt.Sprintf("%s-v%d", seedCreated, v), 2, 1, "retention.ms", "3600000", "cleanup.policy", "delete"))
		},
		func(int16) kmsg.Request {
			return createTopics(true, newTopic("fuzz-validate", -1, -1), newTopic(fuzzTopic, 1, 1), newTopic(seedOffsets, 1, 1),
				newTopic(seedCatalog, 1, 1), newTopic(seedInvalid, 1, 1), newTopic("fuzz_topic", 1, 1))
		},
		func(int16) kmsg.Request {
			return createTopics(false, newTopic("fuzz-bad", 0, 1), newTopic("fuzz-bad2", 1, 3), newTopic("fuzz-bad3", 1, 1, "no.such.config", "1", "retention.ms", "soon"),
				newTopic("fuzz-dup", 1, 1), newTopic("fuzz-dup", 1, 1))
		},
		func(int16) kmsg.Request {
			t := newTopic("fuzz-assigned", -1, -1)
			t.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}, {Partition: 1, Replicas: []int32{1}}}
			bad := newTopic("fuzz-assigned-bad", -1, -1)
			bad.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 1, Replicas: []int32{1, 1}}, {Partition: 0, Replicas: []int32{7}}}
			return createTopics(true, t, bad)
		},
	)
	add(kmsg.DeleteTopics,
		func(v int16) kmsg.Request {
			r := kmsg.NewPtrDeleteTopicsRequest()
			r.TimeoutMillis = 1000
			name := fmt.Sprintf("%s-v%d", seedCreated, v)
			r.TopicNames, r.Topics = []string{name}, []kmsg.DeleteTopicsRequestTopic{{Topic: &name}}
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrDeleteTopicsRequest()
			r.TimeoutMillis = 1000
			names := []string{seedMissing, seedOffsets, seedCatalog, seedInvalid, ""}
			r.TopicNames = names
			for i := range names {
				r.Topics = append(r.Topics, kmsg.DeleteTopicsRequestTopic{Topic: &names[i]})
			}
			r.Topics = append(r.Topics, kmsg.DeleteTopicsRequestTopic{TopicID: [16]byte{9}}) // unknown id
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrDeleteTopicsRequest()
			r.TimeoutMillis = 1000
			name := fuzzTopic
			r.TopicNames, r.Topics = []string{name}, []kmsg.DeleteTopicsRequestTopic{{Topic: &name}}
			return r
		},
	)
	deleteRecords := func(topic string, offset int64, parts ...int32) kmsg.DeleteRecordsRequestTopic {
		t := kmsg.DeleteRecordsRequestTopic{Topic: topic}
		for _, p := range parts {
			t.Partitions = append(t.Partitions, kmsg.DeleteRecordsRequestTopicPartition{Partition: p, Offset: offset})
		}
		return t
	}
	add(kmsg.DeleteRecords,
		func(int16) kmsg.Request {
			r := kmsg.NewPtrDeleteRecordsRequest()
			r.TimeoutMillis, r.Topics = 1000, []kmsg.DeleteRecordsRequestTopic{deleteRecords(fuzzTopic, 0, 0, 1)}
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrDeleteRecordsRequest()
			r.TimeoutMillis = 1000
			r.Topics = []kmsg.DeleteRecordsRequestTopic{deleteRecords(fuzzTopic, -1, 1), deleteRecords(fuzzTopic, 1<<40, 0, -1, 5),
				deleteRecords(seedOffsets, 0, 0), deleteRecords(seedMissing, 0, 0), deleteRecords(fuzzTopic, -7, 0)}
			return r
		},
	)
	add(kmsg.InitProducerID,
		func(int16) kmsg.Request {
			r := kmsg.NewPtrInitProducerIDRequest()
			r.ProducerID, r.ProducerEpoch, r.TransactionTimeoutMillis = -1, -1, 1000
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrInitProducerIDRequest()
			r.ProducerID, r.ProducerEpoch, r.TransactionalID = 1000, 3, kmsg.StringPtr("fuzz-txn")
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrInitProducerIDRequest()
			r.ProducerID, r.ProducerEpoch = 1000, 32767 // bump an unknown producer's epoch
			return r
		},
	)
	leaderEpoch := func(topic string, epoch int32, parts ...int32) kmsg.OffsetForLeaderEpochRequestTopic {
		t := kmsg.OffsetForLeaderEpochRequestTopic{Topic: topic}
		for _, p := range parts {
			t.Partitions = append(t.Partitions, kmsg.OffsetForLeaderEpochRequestTopicPartition{Partition: p, LeaderEpoch: epoch, CurrentLeaderEpoch: -1})
		}
		return t
	}
	add(kmsg.OffsetForLeaderEpoch,
		func(int16) kmsg.Request {
			r := kmsg.NewPtrOffsetForLeaderEpochRequest()
			r.ReplicaID, r.Topics = -1, []kmsg.OffsetForLeaderEpochRequestTopic{leaderEpoch(fuzzTopic, 1, 0, 1)}
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrOffsetForLeaderEpochRequest()
			r.ReplicaID = 1
			r.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{leaderEpoch(fuzzTopic, -1, 0), leaderEpoch(fuzzTopic, 1<<30, 1, -1, 9),
				leaderEpoch(seedMissing, 0, 0), leaderEpoch(seedOffsets, 1, 0)}
			r.Topics[1].Partitions[0].CurrentLeaderEpoch = 1 << 20
			return r
		},
	)
	describeConfigs := func(resources ...kmsg.DescribeConfigsRequestResource) kmsg.Request {
		r := kmsg.NewPtrDescribeConfigsRequest()
		r.Resources, r.IncludeSynonyms, r.IncludeDocumentation = resources, true, true
		return r
	}
	add(kmsg.DescribeConfigs,
		func(int16) kmsg.Request {
			return describeConfigs(kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: fuzzTopic},
				kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1"})
		},
		func(int16) kmsg.Request {
			return describeConfigs(
				kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: fuzzTopic, ConfigNames: []string{"retention.ms", "no.such.config"}},
				kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: seedOffsets},
				kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: seedMissing},
				kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "7"},
				kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: ""},
				kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBrokerLogger, ResourceName: "1"},
			)
		},
	)
	alterConfigs := func(validate bool, resources ...kmsg.AlterConfigsRequestResource) kmsg.Request {
		r := kmsg.NewPtrAlterConfigsRequest()
		r.ValidateOnly, r.Resources = validate, resources
		return r
	}
	alterResource := func(typ kmsg.ConfigResourceType, name string, kv ...string) kmsg.AlterConfigsRequestResource {
		res := kmsg.AlterConfigsRequestResource{ResourceType: typ, ResourceName: name}
		for i := 0; i+1 < len(kv); i += 2 {
			res.Configs = append(res.Configs, kmsg.AlterConfigsRequestResourceConfig{Name: kv[i], Value: kmsg.StringPtr(kv[i+1])})
		}
		return res
	}
	add(kmsg.AlterConfigs,
		func(int16) kmsg.Request {
			return alterConfigs(false, alterResource(kmsg.ConfigResourceTypeTopic, fuzzTopic, "retention.ms", "86400000", "max.message.bytes", "100000"))
		},
		func(int16) kmsg.Request {
			return alterConfigs(true, alterResource(kmsg.ConfigResourceTypeTopic, fuzzTopic, "retention.ms", "-5", "no.such.config", "x"),
				alterResource(kmsg.ConfigResourceTypeTopic, seedOffsets, "retention.ms", "1"),
				alterResource(kmsg.ConfigResourceTypeTopic, seedMissing, "retention.ms", "1"),
				alterResource(kmsg.ConfigResourceTypeBroker, "1", "log.retention.ms", "1"),
				alterResource(kmsg.ConfigResourceType(99), "x"))
		},
	)
	incremental := func(typ kmsg.ConfigResourceType, name string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsRequestResource {
		return kmsg.IncrementalAlterConfigsRequestResource{ResourceType: typ, ResourceName: name, Configs: ops}
	}
	op := func(name string, o kmsg.IncrementalAlterConfigOp, value *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		return kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: name, Op: o, Value: value}
	}
	add(kmsg.IncrementalAlterConfigs,
		func(int16) kmsg.Request {
			r := kmsg.NewPtrIncrementalAlterConfigsRequest()
			r.Resources = []kmsg.IncrementalAlterConfigsRequestResource{incremental(kmsg.ConfigResourceTypeTopic, fuzzTopic,
				op("segment.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("3600000")), op("max.message.bytes", kmsg.IncrementalAlterConfigOpDelete, nil))}
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrIncrementalAlterConfigsRequest()
			r.ValidateOnly = true
			r.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
				incremental(kmsg.ConfigResourceTypeTopic, fuzzTopic, op("retention.ms", kmsg.IncrementalAlterConfigOpSet, nil),
					op("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, kmsg.StringPtr("compact")), op("no.such.config", kmsg.IncrementalAlterConfigOpDelete, nil)),
				incremental(kmsg.ConfigResourceTypeTopic, seedOffsets, op("retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("1"))),
				incremental(kmsg.ConfigResourceTypeBroker, "1", op("log.retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("1"))),
			}
			return r
		},
	)
	add(kmsg.CreatePartitions,
		func(v int16) kmsg.Request {
			r := kmsg.NewPtrCreatePartitionsRequest()
			r.TimeoutMillis = 1000
			r.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: fuzzTopic, Count: 3}}
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrCreatePartitionsRequest()
			r.TimeoutMillis, r.ValidateOnly = 1000, true
			r.Topics = []kmsg.CreatePartitionsRequestTopic{
				{Topic: fuzzTopic, Count: 4, Assignment: []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{1}}, {Replicas: []int32{2}}}},
				{Topic: fuzzTopic, Count: 1}, {Topic: fuzzTopic, Count: -1}, {Topic: seedOffsets, Count: 60}, {Topic: seedMissing, Count: 2},
			}
			return r
		},
	)
	add(kmsg.AlterPartitionAssignments,
		func(int16) kmsg.Request {
			r := kmsg.NewPtrAlterPartitionAssignmentsRequest()
			r.TimeoutMillis = 1000
			r.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: fuzzTopic, Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: []int32{1}}}}}
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrAlterPartitionAssignmentsRequest()
			r.TimeoutMillis = 1000
			r.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{
				{Topic: fuzzTopic, Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{
					{Partition: 0, Replicas: []int32{1, 1}}, {Partition: 0, Replicas: []int32{}}, {Partition: 0, Replicas: []int32{7}},
					{Partition: 0}, {Partition: -1, Replicas: []int32{1}}, {Partition: 99, Replicas: []int32{1}},
				}},
				{Topic: seedMissing, Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: []int32{1}}}},
				{Topic: seedCatalog, Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0}}},
			}
			return r
		},
	)
	add(kmsg.ListPartitionReassignments,
		func(int16) kmsg.Request { return kmsg.NewPtrListPartitionReassignmentsRequest() },
		func(int16) kmsg.Request {
			r := kmsg.NewPtrListPartitionReassignmentsRequest()
			r.Topics = []kmsg.ListPartitionReassignmentsRequestTopic{{Topic: fuzzTopic, Partitions: []int32{0, -1, 99}}, {Topic: seedMissing}}
			return r
		},
	)
	add(kmsg.ElectLeaders,
		func(int16) kmsg.Request { return kmsg.NewPtrElectLeadersRequest() }, // null topics: every partition
		func(int16) kmsg.Request {
			r := kmsg.NewPtrElectLeadersRequest()
			r.ElectionType = 1
			r.TimeoutMillis = 100
			r.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: fuzzTopic, Partitions: []int32{0, -1, 99}}, {Topic: seedMissing, Partitions: []int32{0}}}
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrElectLeadersRequest()
			r.ElectionType = 7
			r.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: fuzzTopic, Partitions: many}}
			return r
		},
	)
	add(kmsg.DescribeTopicPartitions,
		func(int16) kmsg.Request { return kmsg.NewPtrDescribeTopicPartitionsRequest() }, // every topic
		func(int16) kmsg.Request {
			r := kmsg.NewPtrDescribeTopicPartitionsRequest()
			r.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: fuzzTopic}, {Topic: seedMissing}, {Topic: fuzzTopic}, {Topic: seedInvalid}}
			r.ResponsePartitionLimit = 1
			r.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: fuzzTopic, Partition: 1}
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrDescribeTopicPartitionsRequest()
			r.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: fuzzTopic}}
			r.ResponsePartitionLimit = -1
			r.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: seedMissing, Partition: -5}
			return r
		},
	)
	add(kmsg.DescribeCluster, func(int16) kmsg.Request {
		r := kmsg.NewPtrDescribeClusterRequest()
		r.IncludeClusterAuthorizedOperations = true
		return r
	})
	add(kmsg.DescribeLogDirs,
		func(int16) kmsg.Request { return kmsg.NewPtrDescribeLogDirsRequest() }, // null topics: all of them
		func(int16) kmsg.Request {
			r := kmsg.NewPtrDescribeLogDirsRequest()
			r.Topics = []kmsg.DescribeLogDirsRequestTopic{
				{Topic: fuzzTopic, Partitions: []int32{0, 0, -1, 99}}, {Topic: fuzzTopic, Partitions: many},
				{Topic: seedOffsets, Partitions: []int32{0}}, {Topic: seedMissing, Partitions: []int32{0}},
				{Topic: seedCatalog, Partitions: []int32{0}}, {Topic: seedInvalid, Partitions: []int32{0}}, {Topic: fuzzTopic},
			}
			return r
		},
	)
	add(kmsg.DescribeProducers,
		func(int16) kmsg.Request {
			r := kmsg.NewPtrDescribeProducersRequest()
			r.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: fuzzTopic, Partitions: []int32{0, 1}}}
			return r
		},
		func(int16) kmsg.Request {
			r := kmsg.NewPtrDescribeProducersRequest()
			r.Topics = []kmsg.DescribeProducersRequestTopic{
				{Topic: fuzzTopic, Partitions: many}, {Topic: seedOffsets, Partitions: []int32{0}},
				{Topic: seedMissing, Partitions: []int32{0}}, {Topic: seedCatalog, Partitions: []int32{0}},
				{Topic: seedInvalid, Partitions: []int32{0}}, {Topic: fuzzTopic},
			}
			return r
		},
	)
	return s
}
