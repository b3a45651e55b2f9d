package web

// Why a card was declined, in the shopper's words. The payment service answers a decline
// with a machine reason (docs/api-contract.md: 402 with `reason`); the page never shows it.

// declineSentences follow "Your card was declined." on the payment page: what happened,
// then what to do.
var declineSentences = map[string]string{
	"card_declined":      "The bank that issued it did not approve the payment. Try another card, or ask your bank why.",
	"insufficient_funds": "There is not enough money available on it for this order. Try another card, or pay a smaller order.",
	"processor_error":    "The card processor had a problem, so nothing was charged. Please try again in a moment.",
}

// declineFallback is said for a reason this shop does not know (a newer payment service,
// another processor): a plain sentence, never the code.
const declineFallback = "The payment was not approved. Try another card, or ask your bank why."

// declineSentence explains a decline reason to the shopper.
func declineSentence(reason string) string {
	if s, ok := declineSentences[reason]; ok {
		return s
	}
	return declineFallback
}

// declineLabels name a declined or failed payment's reason in the payment's facts.
var declineLabels = map[string]string{
	"card_declined":      "Not approved by the card's bank",
	"insufficient_funds": "Not enough money available on the card",
	"processor_error":    "The card processor had a problem",
}

// declineLabel names a payment's reason in a few words; an unknown one gets general words.
func declineLabel(reason string) string {
	if reason == "" {
		return ""
	}
	if s, ok := declineLabels[reason]; ok {
		return s
	}
	return "Not approved"
}
