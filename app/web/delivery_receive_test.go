package web

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/store"
)

func TestResultJSONMatchesEncodingJSON(t *testing.T) {
	for _, res := range []ingest.Result{
		{},
		{Status: 200, Outcome: store.DeliveryAccepted, Event: "push", DeliveryID: "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		{Status: 202, Outcome: store.DeliveryIgnored, Event: "ping", DeliveryID: "d-1", Reason: "ping: the webhook is set up"},
		{Status: 200, Outcome: store.DeliveryDuplicate, Reason: "this delivery was already processed"},
		{Status: 200, Outcome: store.DeliveryAccepted, DeliveryID: `<odd> & "quoted" \ id` + "\t\n\u2028é\xff"},
		{Event: "x", Reason: "only a reason", TenantID: 7, SourceID: "src", Kind: "github", Refusal: "r"},
	} {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(res); err != nil {
			t.Fatal(err)
		}
		if got := appendResultJSON([]byte("prefix"), res); !bytes.Equal(got, append([]byte("prefix"), want.Bytes()...)) {
			t.Errorf("appendResultJSON(%+v)\n = %s\nwant %s", res, got, want.Bytes())
		}
	}
}
