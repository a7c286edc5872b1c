package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// DemoReferAgency is the demo agency whose contact_policy is "refer": a
// contact request to it waits in its staff's inbox for a person to answer
// with a named contact or decline (the others answer at once with their
// duty desk). The demo starts with one request from northshire-csc
// waiting there.
var DemoReferAgency = DemoAgencies[1].NodeID

// demoContactMessage is the waiting request's message.
const demoContactMessage = "Demo: we are worried about this child's attendance; who at the school can we talk to?"

// seedContactRequest has northshire-csc's practitioner (its API token) ask
// the refer agency for contact about the first person both hold, through
// the real API and peer transport, so that the demo starts with a request
// in that agency's inbox. It returns the person's NHS number.
func (d *Demo) seedContactRequest(ctx context.Context) (string, error) {
	from := DemoAgencies[0].NodeID
	i := slices.IndexFunc(d.People, func(p DemoPerson) bool {
		return slices.Contains(p.Holders, from) && slices.Contains(p.Holders, DemoReferAgency)
	})
	if i < 0 {
		return "", fmt.Errorf("node: demo: nobody is held by both %s and %s", from, DemoReferAgency)
	}
	body, _ := json.Marshal(map[string]string{"nodeId": DemoReferAgency, "purpose": "safeguarding", "nhsNumber": d.People[i].NHSNumber, "message": demoContactMessage})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+d.Stacks[0].Addr.String()+"/v1/contact-requests", strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+d.PractitionerTokens[from])
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("node: demo contact request: %w", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("node: demo contact request: %d %s", res.StatusCode, b)
	}
	return d.People[i].NHSNumber, nil
}

// printContactHelp says what to try with contact requests.
func (d *Demo) printContactHelp(w io.Writer) {
	i := slices.IndexFunc(DemoAgencies, func(a DemoAgency) bool { return a.NodeID == DemoReferAgency })
	if i < 0 || i >= len(d.Stacks) {
		return
	}
	fmt.Fprintf(w, "\nContact requests: %s answers them by hand. Sign in at its page (http://%s/) as practitioner:\n", DemoAgencies[i].Agency, d.Stacks[i].Addr)
	fmt.Fprintf(w, "  a request from %s is waiting in its inbox; answer it with a named person, or decline it.\n", DemoAgencies[0].Agency)
	fmt.Fprintf(w, "  Ask it yourself from %s's page (\"Request contact\" on the school's row): the answer\n", DemoAgencies[0].Agency)
	fmt.Fprintln(w, "  appears live under \"My contact requests\", and both sides keep it across restarts.")
}

// printShieldedHelp says what to try with the shielded clinic: a number it
// holds, where to look it up, and where to answer.
func (d *Demo) printShieldedHelp(w io.Writer) {
	at := func(id string) int {
		i := slices.IndexFunc(DemoAgencies, func(a DemoAgency) bool { return a.NodeID == id })
		if i < 0 || i >= len(d.Stacks) || slices.Contains(d.Down, id) {
			return -1
		}
		return i
	}
	clinic, broker := at(DemoShielded), at(DemoBroker)
	if clinic < 0 || broker < 0 {
		return
	}
	asker := d.running(DemoAgencies[3].NodeID, DemoAgencies[2].NodeID, DemoAgencies[1].NodeID)
	i := slices.IndexFunc(d.People, func(p DemoPerson) bool {
		return slices.Contains(p.Shielded, DemoShielded) && (asker < 0 || !slices.Contains(p.Holders, DemoAgencies[asker].NodeID))
	})
	if i < 0 || asker < 0 {
		return
	}
	fmt.Fprintf(w, "\nA shielded service: %s (http://%s/) is not named to anyone; its broker is %s.\n",
		DemoAgencies[clinic].Agency, d.Stacks[clinic].Addr, DemoAgencies[broker].Agency)
	fmt.Fprintf(w, "  Look up %s at %s's page (http://%s/): \"a service that protects its patients'\n", display(d.People[i].NHSNumber), DemoAgencies[asker].Agency, d.Stacks[asker].Addr)
	fmt.Fprintf(w, "  confidentiality also holds a record\"; ask through %s. Then sign in at the clinic's\n", DemoAgencies[broker].Agency)
	fmt.Fprintln(w, "  page as practitioner and answer; tick the box to consent to be named, or the asker never learns who it is.")
}
