<#-- The footer at the bottom of every login box (keycloak.v2 leaves it empty). -->
<#macro content>
<p id="shop-test-note" class="shop-test-note">${msg("shopTestNote")}</p>
</#macro>
