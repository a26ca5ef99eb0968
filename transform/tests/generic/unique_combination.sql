{#- Fails on every combination of the columns that more than one row holds. -#}
{% test contactbased_unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
