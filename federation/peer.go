package federation

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"
)

// oidDescriptor marks the certificate extension that carries the node's
// encoded SignedDescriptor. The arc is private to Signpost; only Signpost
// reads the extension.
var oidDescriptor = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 59999, 1, 1}

// PeerMessagesPath is where protocol message batches are POSTed.
const PeerMessagesPath = "/federation/v1/messages"

// PeerRevocationsPath is where a newer revocation list is POSTed (body: its
// canonical encoding), and read with GET.
const PeerRevocationsPath = "/federation/v1/revocations"

// selfCertificate makes the node's TLS certificate: self-signed with its
// enrolled key, valid for the descriptor's period, carrying the descriptor.
func selfCertificate(c *Credentials) (tls.Certificate, error) {
	d := &c.Descriptor.Descriptor
	ext, err := asn1.Marshal(c.Descriptor.Encode())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("federation: certificate extension: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    new(big.Int).SetUint64(d.Serial),
		Subject:         pkix.Name{CommonName: d.NodeID},
		DNSNames:        []string{d.NodeID},
		NotBefore:       d.NotBefore,
		NotAfter:        d.Expires,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		ExtraExtensions: []pkix.Extension{{Id: oidDescriptor, Value: ext}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, c.PrivateKey.Public(), c.PrivateKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("federation: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("federation: parse own certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: c.PrivateKey, Leaf: leaf}, nil
}

// descriptorFromCert extracts the descriptor a peer's certificate carries
// and checks that the certificate's key is the descriptor's key. The TLS
// handshake has already proved the peer holds that key's private half.
func descriptorFromCert(cert *x509.Certificate) (*SignedDescriptor, error) {
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidDescriptor) {
			continue
		}
		var raw []byte
		if rest, err := asn1.Unmarshal(ext.Value, &raw); err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("certificate descriptor extension: %w", ErrDescriptorForged)
		}
		sd, err := DecodeSignedDescriptor(raw)
		if err != nil {
			return nil, errors.Join(err, ErrDescriptorForged)
		}
		pub, ok := cert.PublicKey.(ed25519.PublicKey)
		if !ok || !pub.Equal(sd.Descriptor.PublicKey) {
			return nil, fmt.Errorf("certificate key is not the descriptor's key: %w", ErrDescriptorForged)
		}
		return sd, nil
	}
	return nil, fmt.Errorf("certificate carries no descriptor: %w", ErrNotEnrolled)
}

// verifyPeer authenticates the peer of a TLS connection: its certificate's
// descriptor must verify now under the authority and revocation list.
func (a *Agent) verifyPeer(cs tls.ConnectionState) (*SignedDescriptor, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, fmt.Errorf("no client certificate: %w", ErrNotEnrolled)
	}
	sd, err := descriptorFromCert(cs.PeerCertificates[0])
	if err != nil {
		return nil, err
	}
	if err := a.verify(sd, a.cfg.Now()); err != nil {
		return nil, err
	}
	return sd, nil
}

func (a *Agent) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{a.cert},
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if _, err := a.verifyPeer(cs); err != nil {
				a.stats.refused.Add(1)
				return err
			}
			return nil
		},
	}
}

func (a *Agent) clientTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{a.cert},
		// There is no CA: VerifyConnection checks the descriptor in the
		// certificate and that it names the node we meant to call.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			sd, err := a.verifyPeer(cs)
			if err != nil {
				return err
			}
			if sd.Descriptor.NodeID != cs.ServerName {
				return fmt.Errorf("federation: called %q, answered by %q: %w", cs.ServerName, sd.Descriptor.NodeID, ErrDescriptorForged)
			}
			return nil
		},
	}
}

// newPeerClient builds the HTTP client for node-to-node calls. URLs name the
// node id as host ("https://node-1/..."); the dialer resolves it to the
// member's advertised peer address.
func (a *Agent) newPeerClient() *http.Client {
	dialer := &net.Dialer{Timeout: a.cfg.RequestTimeout}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			target, ok := a.peerAddrOf(host)
			if !ok {
				return nil, fmt.Errorf("federation: no peer address for node %q", host)
			}
			return dialer.DialContext(ctx, network, target)
		},
		TLSClientConfig:       a.clientTLS(),
		TLSHandshakeTimeout:   a.cfg.RequestTimeout,
		ResponseHeaderTimeout: a.cfg.RequestTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: a.cfg.RequestTimeout}
}

type peerCtxKey struct{}

// PeerFromContext returns the authenticated caller of a peer API request:
// the descriptor its TLS certificate carried, verified at the start of the
// request.
func PeerFromContext(ctx context.Context) (Descriptor, bool) {
	sd, ok := ctx.Value(peerCtxKey{}).(*SignedDescriptor)
	if !ok {
		return Descriptor{}, false
	}
	return sd.Descriptor, true
}

// authenticate re-verifies the caller's descriptor on every request (a
// keep-alive connection may outlive a revocation or expiry) and puts it in
// the request context.
func (a *Agent) authenticate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			writeError(w, http.StatusForbidden, "not_authenticated", "peer API needs mutual TLS")
			return
		}
		sd, err := a.verifyPeer(*r.TLS)
		if err != nil {
			a.stats.refused.Add(1)
			writeError(w, http.StatusForbidden, "peer_refused", "peer descriptor not valid: "+err.Error())
			return
		}
		if a.blockedPeer(sd.Descriptor.NodeID) {
			writeError(w, http.StatusServiceUnavailable, "partitioned", "fault injection")
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), peerCtxKey{}, sd)))
	})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{code, msg})
}

// handleMessages receives a batch of protocol messages and queues them for
// the engine loop.
func (a *Agent) handleMessages(w http.ResponseWriter, r *http.Request) {
	from, _ := PeerFromContext(r.Context())
	var buf bytes.Buffer
	body := http.MaxBytesReader(w, r.Body, int64(a.cfg.MaxMessageBytes))
	if _, err := buf.ReadFrom(body); err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "batch too large or unreadable")
		return
	}
	msgs, err := decodeBatch(buf.Bytes(), a.cfg.MaxMessageBytes)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_batch", err.Error())
		return
	}
	for i, m := range msgs {
		select {
		case a.inbound <- inboundMsg{from: from.NodeID, msg: m}:
			a.stats.received.Add(1)
		default:
			a.stats.inboundDropped.Add(uint64(len(msgs) - i))
			writeError(w, http.StatusServiceUnavailable, "busy", "inbound queue full")
			return
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

// handleRevocations accepts a newer revocation list from a peer.
func (a *Agent) handleRevocations(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxRevocationListSize)); err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "revocation list too large")
		return
	}
	rl, err := DecodeRevocationList(buf.Bytes())
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_revocations", err.Error())
		return
	}
	switch err := a.SetRevocations(rl); {
	case err == nil, errors.Is(err, ErrRevocationsStale):
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusBadRequest, "bad_revocations", err.Error())
	}
}

func (a *Agent) serveRevocations(w http.ResponseWriter, r *http.Request) {
	rl := a.revocations()
	if rl == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(rl.Encode())
}
