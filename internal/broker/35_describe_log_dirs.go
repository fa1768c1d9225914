package broker

import (
	"cmp"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/replica"
	"github.com/chronik-stream/chronik/internal/wire"
)

// DescribeLogDirs: v0-4
//
// Behavior:
// * One log directory: the node's data directory, as an absolute path (as
// Kafka answers with its log.dirs).
// * Every replica this node hosts of the topics asked for (null topics:
// all topics, __consumer_offsets included), leader or follower, with the
// bytes of its segment files. Topics and partitions this node does not
// host are left out, as in Kafka; so is a replica stopped by a storage
// error, until it is reopened.
// * Offset lag is Kafka's: how far the replica's log end is behind its
// own high watermark, so 0 on leaders and followers alike. A follower's
// high watermark is its raft commit index, which never passes its last
// entry; how far it is behind the leader's high watermark is known only
// to the leader, and asking it is not cheap, so it is not reported.
// * IsFuture is always false: Chronik does not move replicas between
// directories.
//
// Version notes:
// * v1 same as v0.
// * v2 flexible.
// * v3 top-level error code (always 0: no ACLs).
// * v4 total and usable bytes of the data directory's file system (-1
// each if they cannot be read).
func init() { register(kmsg.DescribeLogDirs, 0, 4, (*Broker).handleDescribeLogDirs) }

func (b *Broker) handleDescribeLogDirs(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.DescribeLogDirsRequest)
	// Sizes and the file system are read off the connection's reader: a
	// slow disk must not hold up the requests behind this one.
	go func() {
		resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
		resp.Dirs = []kmsg.DescribeLogDirsResponseDir{b.describeLogDir(req)}
		respond(resp)
	}()
}

// describeLogDir describes the data directory and the replicas of req's
// topics in it.
func (b *Broker) describeLogDir(req *kmsg.DescribeLogDirsRequest) kmsg.DescribeLogDirsResponseDir {
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.replicas.DataDir()
	if abs, err := filepath.Abs(dir.Dir); err == nil {
		dir.Dir = abs
	}
	dir.TotalBytes, dir.UsableBytes = -1, -1
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir.Dir, &fs); err == nil {
		dir.TotalBytes = int64(fs.Blocks) * int64(fs.Bsize)
		dir.UsableBytes = int64(fs.Bavail) * int64(fs.Bsize)
	} else {
		b.logger.Warn("reading the data directory's file system for DescribeLogDirs", "dir", dir.Dir, "err", err)
	}

	// A local replica counts only if it is the catalog's partition (not
	// one of an earlier topic of the same name, not yet removed).
	var hosted []*replica.Partition
	if req.Topics == nil {
		for _, p := range b.replicas.Partitions() {
			tp := p.TopicPartition()
			if cur, err := b.partition(tp.Topic, tp.Partition); err == nil && cur == p {
				hosted = append(hosted, p)
			}
		}
	} else {
		seen := map[*replica.Partition]bool{}
		for _, rt := range req.Topics {
			for _, part := range rt.Partitions {
				if p, err := b.partition(rt.Topic, part); err == nil && !seen[p] {
					seen[p] = true
					hosted = append(hosted, p)
				}
			}
		}
	}
	slices.SortFunc(hosted, func(x, y *replica.Partition) int {
		tx, ty := x.TopicPartition(), y.TopicPartition()
		return cmp.Or(cmp.Compare(tx.Topic, ty.Topic), cmp.Compare(tx.Partition, ty.Partition))
	})
	for _, p := range hosted {
		if p.View().Failed != nil {
			continue
		}
		tp, l := p.TopicPartition(), p.Log()
		if n := len(dir.Topics); n == 0 || dir.Topics[n-1].Topic != tp.Topic {
			t := kmsg.NewDescribeLogDirsResponseDirTopic()
			t.Topic = tp.Topic
			dir.Topics = append(dir.Topics, t)
		}
		sp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		sp.Partition = tp.Partition
		sp.Size = l.Size()
		sp.OffsetLag = max(l.HighWatermark()-l.NextOffset(), 0)
		t := &dir.Topics[len(dir.Topics)-1]
		t.Partitions = append(t.Partitions, sp)
	}
	return dir
}
