package domain

import "strings"

// iso4217 lists the active ISO 4217 currency codes (funds codes included;
// precious metals, testing and "no currency" codes excluded) with their
// minor-unit exponent, grouped by exponent.
var iso4217 = func() map[string]int {
	groups := map[int]string{
		0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
		2: "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV " +
			"BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK " +
			"DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG " +
			"HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL " +
			"MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD " +
			"PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL " +
			"SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU " +
			"UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL",
		3: "BHD IQD JOD KWD LYD OMR TND",
		4: "CLF UYW",
	}
	m := make(map[string]int, 180)
	for exp, codes := range groups {
		for _, c := range strings.Fields(codes) {
			m[c] = exp
		}
	}
	return m
}()

// IsCurrency reports whether code is an active ISO 4217 currency code
// (upper case, e.g. "EUR").
func IsCurrency(code string) bool {
	_, ok := iso4217[code]
	return ok
}

// CurrencyExponent returns the number of minor-unit digits of an ISO 4217
// currency (EUR 2, JPY 0, KWD 3) and whether the code is known.
func CurrencyExponent(code string) (int, bool) {
	e, ok := iso4217[code]
	return e, ok
}
