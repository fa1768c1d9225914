package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-stream/chronik/internal/wire"
)

// DeleteTopics: v0-6
//
// Behavior:
// * Removes each topic from the catalog; every node then stops its
// replicas and deletes their data.
// * Internal topics cannot be deleted (INVALID_TOPIC_EXCEPTION).
//
// Version notes:
// * v4 flexible, v5 error messages, v6 topics by name or id.
func init() { register(kmsg.DeleteTopics, 0, 6, (*Broker).handleDeleteTopics) }

func (b *Broker) handleDeleteTopics(r *wire.Request, respond func(kmsg.Response)) {
	req := r.Msg.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			targets = append(targets, target{name: &n})
		}
	}
	ctx, cancel := b.ctx()
	defer cancel()
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		var err error
		t := b.catalog.TopicByID(tg.id)
		if tg.name != nil {
			t = b.catalog.Topic(*tg.name)
		}
		switch {
		case t == nil && tg.name == nil:
			err = kerr.UnknownTopicID
		case t == nil:
			err = kerr.UnknownTopicOrPartition
		case t.Internal:
			err = describe(kerr.InvalidTopicException, "internal topic %s cannot be deleted", t.Name)
		default:
			name := t.Name
			st.Topic, st.TopicID = &name, t.ID
			if err = b.catalog.DeleteTopic(ctx, t.Name); err == nil {
				b.logger.Info("deleted topic", "topic", t.Name)
			}
		}
		st.ErrorCode = b.errCode(err)
		st.ErrorMessage = errMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	respond(resp)
}
