package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// Client calls one node's admin API.
type Client struct {
	// Addr is the node's metrics/admin address, host:port.
	Addr string
	HTTP *http.Client
}

// NewClient returns a client of the node at addr with the given timeout
// per request.
func NewClient(addr string, timeout time.Duration) *Client {
	return &Client{Addr: addr, HTTP: &http.Client{Timeout: timeout}}
}

// NodeError is a failed call: the node that could not answer, and why.
type NodeError struct {
	Addr string
	// Status is the HTTP status when the node answered, 0 when it could
	// not be reached.
	Status int
	// API is the node's error body when it answered with one.
	API *Error
	Err error
}

func (e *NodeError) Error() string {
	if e.API != nil {
		msg := e.API.Message
		if e.API.LeaderAdminAddr != "" {
			msg += fmt.Sprintf(" (its admin address is %s)", e.API.LeaderAdminAddr)
		}
		return fmt.Sprintf("node %s: %s", e.Addr, msg)
	}
	return fmt.Sprintf("node %s: %v", e.Addr, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }

// Cluster fetches GET /admin/cluster.
func (c *Client) Cluster(ctx context.Context) (ClusterStatus, error) {
	var out ClusterStatus
	return out, c.do(ctx, http.MethodGet, "/admin/cluster", &out)
}

// Partitions fetches GET /admin/partitions.
func (c *Client) Partitions(ctx context.Context) (PartitionsStatus, error) {
	var out PartitionsStatus
	return out, c.do(ctx, http.MethodGet, "/admin/partitions", &out)
}

// TransferLeader asks the node, which must lead topic/partition, to hand
// the leadership to node to (0: the most caught-up in-sync follower).
func (c *Client) TransferLeader(ctx context.Context, topic string, partition int32, to uint64) (TransferResult, error) {
	path := "/admin/partitions/" + url.PathEscape(topic) + "/" + strconv.Itoa(int(partition)) + "/transfer-leader"
	if to != 0 {
		path += "?to=" + strconv.FormatUint(to, 10)
	}
	var out TransferResult
	return out, c.do(ctx, http.MethodPost, path, &out)
}

// StepDown asks the node to hand every leadership it holds to in-sync
// followers.
func (c *Client) StepDown(ctx context.Context) (StepDownResult, error) {
	var out StepDownResult
	return out, c.do(ctx, http.MethodPost, "/admin/step-down", &out)
}

// Rebalance asks for the moves that balance the cluster, and applies them
// unless dryRun.
func (c *Client) Rebalance(ctx context.Context, dryRun bool) (RebalancePlan, error) {
	var out RebalancePlan
	return out, c.do(ctx, http.MethodPost, "/admin/rebalance?dry_run="+strconv.FormatBool(dryRun), &out)
}

// Decommission starts (or, with cancel, stops) moving every replica off
// node id, which then leaves the cluster.
func (c *Client) Decommission(ctx context.Context, id uint64, cancel bool) (NodeStatus, error) {
	var out NodeStatus
	return out, c.do(ctx, http.MethodPost, "/admin/nodes/"+strconv.FormatUint(id, 10)+"/decommission?cancel="+strconv.FormatBool(cancel), &out)
}

// Replace starts the replacement of node id, which lost its data
// directory: it comes back empty under its id.
func (c *Client) Replace(ctx context.Context, id uint64) (NodeStatus, error) {
	var out NodeStatus
	return out, c.do(ctx, http.MethodPost, "/admin/nodes/"+strconv.FormatUint(id, 10)+"/replace", &out)
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.Addr+path, nil)
	if err != nil {
		return &NodeError{Addr: c.Addr, Err: err}
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return &NodeError{Addr: c.Addr, Err: reason(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &NodeError{Addr: c.Addr, Status: resp.StatusCode, Err: fmt.Errorf("read response: %w", err)}
	}
	if resp.StatusCode/100 != 2 {
		var apiErr Error
		if json.Unmarshal(body, &apiErr) == nil && apiErr.Message != "" {
			return &NodeError{Addr: c.Addr, Status: resp.StatusCode, API: &apiErr, Err: errors.New(apiErr.Message)}
		}
		return &NodeError{Addr: c.Addr, Status: resp.StatusCode, Err: fmt.Errorf("%s %s: %s", method, path, resp.Status)}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &NodeError{Addr: c.Addr, Status: resp.StatusCode, Err: fmt.Errorf("decode %s: %w", path, err)}
	}
	return nil
}

// reason shortens a transport error to what an operator acts on
// ("connection refused", "no such host", "timeout") and keeps the rest.
func reason(err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.Is(err, context.DeadlineExceeded):
		return errors.New("no answer before the timeout")
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("cannot resolve %s: %s", dnsErr.Name, dnsErr.Err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return errors.New("no answer before the timeout")
	}
	return err
}
