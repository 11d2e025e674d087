"""COVID-CTset: dark-pixel lung-slice selection and the patient-level decision rule."""
