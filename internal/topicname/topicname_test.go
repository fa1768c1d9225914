package topicname

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"orders", true},
		{"a.b_c-D9", true},
		{strings.Repeat("x", MaxLength), true},
		{strings.Repeat("x", MaxLength+1), false},
		{"", false},
		{".", false},
		{"..", false},
		{"...", true},
		{"a/b", false},
		{"a b", false},
		{"é", false},
		{"a\x00", false},
		{"../x", false},
	} {
		if err := Validate(c.name); (err == nil) != c.ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestReservedAndCollisions(t *testing.T) {
	for _, n := range []string{"__consumer_offsets", "__cluster_metadata", "__transaction_state"} {
		if !Reserved(n) {
			t.Errorf("%s is not reserved", n)
		}
	}
	if Reserved("__consumer_offsets2") || Reserved("orders") {
		t.Error("an ordinary name is reserved")
	}
	if CollisionKey("a.b") != CollisionKey("a_b") || CollisionKey("a.b") == CollisionKey("a-b") {
		t.Error("collision key does not equate exactly '.' and '_'")
	}
}
