package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// EnvPrefix starts every environment variable name.
const EnvPrefix = "CHRONIK_"

// PeersEnv is the one environment variable whose name is not derived from
// its key (cluster.peers.nodes): it takes the ParsePeers syntax.
const PeersEnv = "CHRONIK_CLUSTER_PEERS"

// peersKey is the TOML path of the member list. Overrides also accept
// "cluster.peers".
const peersKey = "cluster.peers.nodes"

// maxID is the largest node id: TOML integers are signed 64-bit.
const maxID = math.MaxInt64

// Load builds the configuration: defaults, then the TOML file at path
// (none if path is ""), then the environment as seen through env (nil
// means no environment; pass os.LookupEnv for the real one), then
// overrides (flag values keyed by TOML path, e.g. {"data_dir": "/x"},
// parsed like environment values; "cluster.peers" and "cluster.node_id"
// are accepted as aliases of cluster.peers.nodes and node_id). It returns the validated result, or an
// error that joins every problem found; each line names the key.
//
// Environment variables set to the empty string are ignored. Overrides are
// applied as given, so pass only flags the operator actually set.
func Load(path string, env func(string) (string, bool), overrides map[string]string) (Config, error) {
	c := Default()
	var errs []error
	if path != "" {
		if err := loadFile(&c, path); err != nil {
			errs = append(errs, err)
		}
	}
	if env != nil {
		errs = append(errs, applyEnv(&c, env)...)
	}
	errs = append(errs, applyOverrides(&c, overrides)...)
	if c.Cluster.Discovery.NodeIDFromHostname {
		if c.NodeID != Default().NodeID {
			errs = append(errs, fmt.Errorf("invalid config: node_id = %d and cluster.discovery.node_id_from_hostname = true: set only one", c.NodeID))
		} else if host, err := os.Hostname(); err != nil {
			errs = append(errs, fmt.Errorf("invalid config: cluster.discovery.node_id_from_hostname: %w", err))
		} else if id, err := NodeIDFromHostname(host); err != nil {
			errs = append(errs, fmt.Errorf("invalid config: cluster.discovery.node_id_from_hostname: %w", err))
		} else {
			c.NodeID = id
		}
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LookupFunc adapts an environment in os.Environ form ("K=V") to Load's env
// parameter.
func LookupFunc(environ []string) func(string) (string, bool) {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// UnknownEnv returns the CHRONIK_ variables in environ (os.Environ form)
// that name no configuration key, e.g. a misspelt one that Load silently
// ignores. A caller can log them as warnings.
func UnknownEnv(environ []string) []string {
	known := make(map[string]bool, len(leaves))
	for _, l := range leaves {
		known[l.env] = true
	}
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, EnvPrefix) && !known[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// EnvVar describes one configuration key and its environment variable.
type EnvVar struct {
	Name        string // CHRONIK_...
	Key         string // TOML path, also the override key
	Type        string // bool, string, int, int16, int32, int64, uint64, peers
	Default     string // the default, formatted as the variable would be written
	Description string
}

// EnvVars lists every configuration key in declaration order.
func EnvVars() []EnvVar {
	d := Default()
	dv := reflect.ValueOf(&d).Elem()
	out := make([]EnvVar, len(leaves))
	for i, l := range leaves {
		out[i] = EnvVar{Name: l.env, Key: l.key, Type: l.typeName(), Default: l.format(dv.FieldByIndex(l.index)), Description: l.desc}
	}
	return out
}

// leaf is one settable key.
type leaf struct {
	key    string // TOML path
	env    string
	index  []int // field index path from Config
	typ    reflect.Type
	desc   string
	secret bool
}

var peersType = reflect.TypeOf([]Peer(nil))

var (
	leaves = collectLeaves(reflect.TypeOf(Config{}), "", nil)
	byKey  = indexLeaves(leaves)
)

func collectLeaves(t reflect.Type, prefix string, index []int) []leaf {
	var out []leaf
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		key := prefix + name
		idx := append(append([]int(nil), index...), i)
		switch {
		case f.Type == peersType:
			out = append(out, leaf{key: key, env: PeersEnv, index: idx, typ: f.Type, desc: f.Tag.Get("desc")})
		case f.Type.Kind() == reflect.Struct:
			out = append(out, collectLeaves(f.Type, key+".", idx)...)
		default:
			switch f.Type.Kind() {
			case reflect.String, reflect.Bool,
				reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			default:
				panic(fmt.Sprintf("config: key %s has unsupported type %s", key, f.Type))
			}
			out = append(out, leaf{
				key:    key,
				env:    EnvName(key),
				index:  idx,
				typ:    f.Type,
				desc:   f.Tag.Get("desc"),
				secret: f.Tag.Get("secret") == "true",
			})
		}
	}
	return out
}

func indexLeaves(ls []leaf) map[string]*leaf {
	m := make(map[string]*leaf, len(ls))
	for i := range ls {
		m[ls[i].key] = &ls[i]
	}
	return m
}

// EnvName is the environment variable of a TOML path:
// raft.election_timeout_ms is CHRONIK_RAFT_ELECTION_TIMEOUT_MS. The member
// list, cluster.peers.nodes, is the exception: CHRONIK_CLUSTER_PEERS.
func EnvName(key string) string {
	if key == peersKey || key == "cluster.peers" {
		return PeersEnv
	}
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func (l *leaf) typeName() string {
	if l.typ == peersType {
		return "peers"
	}
	return l.typ.Kind().String()
}

// format writes a value the way the environment would give it.
func (l *leaf) format(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Slice:
		return FormatPeers(v.Interface().([]Peer))
	}
	return fmt.Sprint(v.Interface())
}

// set parses s into the field of c. The error is the rule s broke.
func (l *leaf) set(c *Config, s string) error {
	v := reflect.ValueOf(c).Elem().FieldByIndex(l.index)
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return errors.New("must be true or false")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := v.Type().Bits()
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, bits)
		if err != nil {
			if bits == 64 || !errors.Is(err, strconv.ErrRange) {
				return errors.New("must be an integer")
			}
			lo, hi := int64(-1)<<(bits-1), int64(uint64(1)<<(bits-1)-1)
			return fmt.Errorf("must be an integer between %d and %d", lo, hi)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		bits := v.Type().Bits()
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, bits)
		if err != nil || n > maxID {
			hi := uint64(1)<<bits - 1
			if bits == 64 {
				hi = maxID
			}
			return fmt.Errorf("must be an integer between 0 and %d", hi)
		}
		v.SetUint(n)
	case reflect.Slice:
		peers, err := ParsePeers(s)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(peers))
	default:
		return fmt.Errorf("has unsupported type %s", v.Type())
	}
	return nil
}

// quoteValue shows a raw value in an error, hiding secrets.
func (l *leaf) quoteValue(s string) string {
	if l.secret {
		return "(secret)"
	}
	return strconv.Quote(s)
}

func applyEnv(c *Config, env func(string) (string, bool)) []error {
	var errs []error
	for i := range leaves {
		l := &leaves[i]
		s, ok := env(l.env)
		if !ok || s == "" {
			continue
		}
		if err := l.set(c, s); err != nil {
			errs = append(errs, fmt.Errorf("invalid config: environment variable %s = %s (%s) %v", l.env, l.quoteValue(s), l.key, err))
		}
	}
	return errs
}

func applyOverrides(c *Config, overrides map[string]string) []error {
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		s := overrides[k]
		lk := k
		switch lk {
		case "cluster.peers":
			lk = peersKey
		case "cluster.node_id":
			lk = "node_id"
		}
		l, ok := byKey[lk]
		if !ok {
			errs = append(errs, fmt.Errorf("invalid config: override for unknown key %q%s", k, suggest(k)))
			continue
		}
		if err := l.set(c, s); err != nil {
			errs = append(errs, fmt.Errorf("invalid config: override %s = %s %v", k, l.quoteValue(s), err))
		}
	}
	return errs
}

// fileAlias is decoded in a second pass: the keys the file may use that
// Config has no field for.
type fileAlias struct {
	Cluster struct {
		NodeID *int64 `toml:"node_id"`
	} `toml:"cluster"`
}

func loadFile(c *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("invalid config: config file %s does not exist", path)
		}
		return fmt.Errorf("invalid config: cannot read config file: %w", err)
	}
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return fmt.Errorf("invalid config: config file %s: %s", path, strings.TrimPrefix(err.Error(), "toml: "))
	}
	var errs []error
	for _, k := range md.Undecoded() {
		key := k.String()
		if key == "cluster.node_id" {
			continue
		}
		errs = append(errs, fmt.Errorf("invalid config: config file %s: unknown key %s%s", path, key, suggest(key)))
	}

	// The decoder stores a negative integer into a uint64 without
	// complaint; TOML has no integers above MaxInt64, so any such value
	// was negative.
	if c.NodeID > maxID {
		errs = append(errs, fmt.Errorf("invalid config: config file %s: node_id = %d must not be negative", path, int64(c.NodeID)))
	}
	for i, p := range c.Cluster.Peers.Nodes {
		if p.ID > maxID {
			errs = append(errs, fmt.Errorf("invalid config: config file %s: cluster.peers.nodes[%d].id = %d must not be negative", path, i, int64(p.ID)))
		}
	}

	var alias fileAlias
	if _, err := toml.Decode(string(data), &alias); err != nil {
		errs = append(errs, fmt.Errorf("invalid config: config file %s: %s", path, strings.TrimPrefix(err.Error(), "toml: ")))
	} else if alias.Cluster.NodeID != nil {
		a := *alias.Cluster.NodeID
		switch {
		case a < 1:
			errs = append(errs, fmt.Errorf("invalid config: config file %s: cluster.node_id = %d must be at least 1", path, a))
		case md.IsDefined("node_id") && c.NodeID != uint64(a):
			errs = append(errs, fmt.Errorf("invalid config: config file %s: node_id = %d and its alias cluster.node_id = %d differ; set only one", path, int64(c.NodeID), a))
		default:
			c.NodeID = uint64(a)
		}
	}
	return errors.Join(errs...)
}

// suggest returns ` (did you mean "x"?)` for a mistyped key, or "".
func suggest(key string) string {
	candidates := make([]string, 0, len(leaves)+4)
	for _, l := range leaves {
		candidates = append(candidates, l.key)
	}
	candidates = append(candidates, "cluster.node_id", peersKey+".id", peersKey+".addr", peersKey+".raft_addr")
	best, bestD := "", 4 // suggest only close matches
	for _, k := range candidates {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		// A right name in the wrong table: same last element.
		last := key[strings.LastIndex(key, ".")+1:]
		for _, k := range candidates {
			if k[strings.LastIndex(k, ".")+1:] == last {
				return fmt.Sprintf(" (did you mean %s?)", k)
			}
		}
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
